# shellcheck shell=bash
# Sourced by bench/ab.sh and bench/cpu.sh: use BUILD.so installs a build of
# payext's library and restarts the server with it (the library is
# preloaded, so a new file needs a new postmaster).  Needs
# with_cluster.sh's initdb mode.
: "${PAYEXT_PGDATA:?run me through PAYEXT_CLUSTER=initdb scripts/with_cluster.sh}"
libdir=$("${PG_CONFIG:-pg_config}" --pkglibdir)

use() {
	install -m 755 "$1" "$libdir/payext.so"
	$PAYEXT_PGCTL -D "$PAYEXT_PGDATA" -w -m fast restart -l "$PAYEXT_PGDATA/../server.log" >/dev/null
}
