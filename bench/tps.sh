# shellcheck shell=bash
# Sourced by bench/ab.sh, bench/till.sh and bench/codefloor.sh: tps ARGS...
# runs pgbench on the database bench with the caller's $clients (2
# threads), $seconds and synchronous_commit $sync, ARGS (-f SCRIPT, -b
# BUILTIN, -U ROLE...) added, and prints its transactions a second.
bindir=$("${PG_CONFIG:-pg_config}" --bindir)

tps() {
	PGOPTIONS="-c synchronous_commit=${sync:?}" "$bindir/pgbench" -n -c "${clients:?}" -j 2 \
		-T "${seconds:?}" "$@" bench 2>&1 | sed -n 's/^tps = \([0-9]*\).*/\1/p'
}
