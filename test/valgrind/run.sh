#!/usr/bin/env bash
# The pg_regress suite against a server running under Valgrind memcheck, with
# the installed payext.so; no rebuild.  See test/valgrind/README.md.
#
#   test/valgrind/run.sh                          # regress (what the suite runs)
#   PAYEXT_VALGRIND_SUITES="regress isolation" test/valgrind/run.sh
#   PAYEXT_VALGRIND_SUPP=none test/valgrind/run.sh  # every error, none suppressed
#   PAYEXT_VALGRIND_KEEP=1 test/valgrind/run.sh   # keep the logs after a pass
#
# Fails when a test's output differs, when any valgrind error or definite
# leak has a frame in payext (payext.so or this repository's src/), or when
# any error is left after test/valgrind/postgres.supp.
#
# What memcheck can see here: Debian's postgres is not built with
# USE_VALGRIND, so palloc'd chunks are invisible to it: memcheck sees each
# memory-context block (8 kB and up, malloc'd) as one allocation.  An
# overrun of a palloc'd chunk into its neighbour, a use after pfree or a read
# of recycled palloc memory is not reported; a chunk over 8 kB gets a
# malloc'd block of its own, so running past its 8-byte-aligned end is.
# Memory fresh from malloc is undefined to memcheck until written, so
# reading a palloc'd field that was never set is reported when the chunk is
# the first use of that memory.  Caught: uninitialised values used in a
# branch or passed to a system call (payext's own code included, whether on
# its stack or in fresh palloc memory), out-of-bounds and invalid frees of
# malloc'd memory (libc, OpenSSL), overlapping memcpy, and malloc'd
# (OpenSSL) objects left definitely lost when a backend exits.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
t0=$SECONDS

PG_CONFIG=${PG_CONFIG:-pg_config}
export PG_CONFIG
bindir=$("$PG_CONFIG" --bindir)
pkglibdir=$("$PG_CONFIG" --pkglibdir)
suites=${PAYEXT_VALGRIND_SUITES:-regress}
supp=${PAYEXT_VALGRIND_SUPP:-$repo/test/valgrind/postgres.supp}

command -v valgrind >/dev/null || { echo "valgrind: not installed (apt-get install valgrind)" >&2; exit 2; }
[ -f "$pkglibdir/payext.so" ] || { echo "valgrind: $pkglibdir/payext.so is not installed" >&2; exit 2; }

# shellcheck source=scripts/owned_dir.sh
. "$repo/scripts/owned_dir.sh"
owned_dir payext-valgrind
work=$owned_dir_path
pgdata=$work/data
vgdir=$work/vg
log=$work/server.log
# shellcheck source=scripts/ports.sh
. "$repo/scripts/ports.sh"
pick_ports 1
port=$ports_base
server_pid=

cleanup() {
	status=$?
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		as_owner "$bindir/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if [ "$status" = 0 ] && [ -z "${PAYEXT_VALGRIND_KEEP:-}" ]; then
		rm -rf "$work"
	else
		echo "valgrind: logs kept in $work (vg/vg.PID.log, server.log)" >&2
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# initdb itself runs without valgrind: its bootstrap backend never loads payext.
as_owner mkdir "$vgdir"
as_owner "$bindir/initdb" -D "$pgdata" -U "$owner" -A trust --locale=C.UTF-8 -E UTF8 \
	>"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; exit 1; }
cat >>"$pgdata/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$work'
port = $port
shared_preload_libraries = 'payext'
# Under valgrind every process runs 20-50 times slower, and each process the
# postmaster forks is one more valgrind'ed process to start, check and log.
# No parallel query, no logical replication launcher, no autovacuum: fewer
# processes, and none that come and go at random moments (autovacuum would
# also make the regress outputs' plans and stats timing-dependent).
max_parallel_workers_per_gather = 0
max_parallel_maintenance_workers = 0
max_logical_replication_workers = 0
autovacuum = off
# No JIT: LLVM compiling code at run time under valgrind is slow and noisy,
# and none of it is payext's.
jit = off
# Small shared memory: memcheck keeps shadow state for all of it.
shared_buffers = 32MB
max_connections = 20
huge_pages = off
# A backend takes seconds to start under valgrind; never time it out.
authentication_timeout = 600s
# Nothing here is about durability; fsync only costs time.
fsync = off
# Every statement with its pid, to find what a vg.PID.log's process was running.
log_line_prefix = '%m [%p] '
log_statement = all
EOF

# The postmaster itself under valgrind, not through pg_ctl's shell: every
# backend is a fork of it and stays under valgrind (fork, no exec).
#  No --error-exitcode: it applies to every forked process, and the startup
#    process exiting with anything but 0 makes the postmaster give up (and a
#    backend exiting with anything but 0 or 1 restarts everything mid-test).
#    The verdict comes from the logs instead.
#  --leak-check=full --show-leak-kinds=definite: postgres frees by memory
#    context and exits without freeing, so its leaks are not counted; but a
#    definite leak with a payext frame (an OpenSSL object payext never frees)
#    is.  --errors-for-leak-kinds=none keeps leaks out of the error counts.
#  --track-origins=yes: says where an uninitialised value came from (a
#    stack frame or an allocation); memcheck runs at about half the speed
#    with it, and the run still fits in a few minutes.
#  --fullpath-after= : payext's frames carry the full path of src/*.c.
#  --gen-suppressions=all: a ready suppression after each error, to write
#    postgres.supp from; -s: at exit, how often each suppression was used.
# shellcheck disable=SC2054 # --error-markers takes two values after a comma
vgopts=(--tool=memcheck --trace-children=yes --log-file="$vgdir/vg.%p.log"
	--track-origins=yes --num-callers=30
	--leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=none
	--error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END
	--gen-suppressions=all --fullpath-after= -s)
[ "$supp" = none ] || vgopts+=(--suppressions="$supp")
echo "valgrind: starting postgres under memcheck in $work (port $port)"
as_owner valgrind "${vgopts[@]}" "$bindir/postgres" -D "$pgdata" >"$log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do
	"$bindir/pg_isready" -q -h "$work" -p "$port" && break
	kill -0 "$server_pid" 2>/dev/null || { echo "valgrind: postgres did not start" >&2; cat "$log" >&2; exit 1; }
	sleep 1
done
"$bindir/pg_isready" -q -h "$work" -p "$port" || { echo "valgrind: postgres not ready after 300 s" >&2; exit 1; }
echo "valgrind: server up after $((SECONDS - t0)) s"

export PGHOST=$work PGPORT=$port PGUSER=$owner PGDATABASE=postgres
tests_ok=1
for suite in $suites; do
	s0=$SECONDS
	out=$work/$suite
	mkdir -p "$out"
	# --outputdir keeps results/ and regression.diffs out of the working
	# tree (another run of the suites may be using it).
	case "$suite" in
	regress) target=(ISOLATION=) ;;
	isolation) target=(REGRESS=) ;;
	*) echo "valgrind: unknown suite $suite" >&2; exit 2 ;;
	esac
	if make -s installcheck PG_CONFIG="$PG_CONFIG" "${target[@]}" \
		EXTRA_REGRESS_OPTS="--outputdir=$out" >"$out/make.log" 2>&1; then
		echo "valgrind: $suite passed in $((SECONDS - s0)) s"
	else
		tests_ok=0
		echo "valgrind: $suite FAILED in $((SECONDS - s0)) s"
		cat "$out/make.log"
		[ -s "$out/regression.diffs" ] && head -n 300 "$out/regression.diffs"
	fi
done

# A clean stop; the postmaster waits for its children, and valgrind's own
# exit (leak check, log) comes after that.
as_owner "$bindir/pg_ctl" -D "$pgdata" -m fast -w -t 600 stop >/dev/null
server_status=0
wait "$server_pid" || server_status=$?
server_pid=
for _ in $(seq 60); do
	unfinished=$(grep -L 'ERROR SUMMARY' "$vgdir"/vg.*.log || true)
	[ -z "$unfinished" ] && break
	sleep 1
done

# One pass over the logs.  Each error, and each definite leak, is between
# the markers.  A record is payext's when any frame (the error's stack, the
# allocation's or the origin's) is in payext.so or in one of src/'s files:
# frames with debug information name the source file (with the path it was
# compiled at, which need not be this checkout), not the library.
report=$work/report
mkdir -p "$report"
srcfiles=$(cd src && printf '%s\n' ./*.c ./*.h | sed 's|^[.]/||; s/[.]/[.]/' | paste -sd'|' -)
awk -v srcre="[(/]src/($srcfiles):[0-9]" -v report="$report" '
function flush_rec(kind,   is_payext, i, key, n, line, named) {
	is_payext = 0
	for (i = 1; i <= nrec; i++)
		if (index(rec[i], "payext.so") || rec[i] ~ srcre) is_payext = 1
	if (is_payext) {
		file = report "/payext_" kind
		print "--- " FILENAME > file
		for (i = 1; i <= nrec; i++) print rec[i] > file
		print "" > file
		if (kind == "errors") payext_errors++; else payext_leaks++
		return
	}
	if (kind == "leaks") { other_leaks++; return }
	other_errors++
	# Summary key: the kind and the first two named postgres frames.
	key = rec[1]; n = 0
	for (i = 2; i <= nrec && n < 2; i++) {
		line = rec[i]
		if (line ~ /^ *(Address|Uninitialised|Block)/) break
		if (line ~ /^ *(at|by) 0x/ && line !~ /: \?\?\? / && index(line, "/bin/postgres)")) {
			sub(/^ *(at|by) 0x[0-9A-F]+: /, "", line); sub(/ \(.*/, "", line)
			key = key (n ? " < " : " in ") line; n++
		}
	}
	summary[key]++
}
FNR == 1 { inerr = 0; summarised = 0 }
{
	line = $0
	if (line !~ /^(==|--)[0-9]+(==|--) /) next
	sub(/^(==|--)[0-9]+(==|--) /, "", line)
}
# -s lists the errors again after the first ERROR SUMMARY, then the
# suppressions used ("used_suppression:  COUNT NAME FILE:LINE").
line ~ /^used_suppression:/ { split(line, w, " "); used[w[3]] += w[2]; next }
summarised { next }
line ~ /^ERROR SUMMARY:/ {
	summarised = 1
	split(line, w, " "); unsuppressed += w[3]
	if (match(line, /suppressed: [0-9]+/)) suppressed += substr(line, RSTART + 12, RLENGTH - 12)
	next
}
line == "VALGRINDERROR-BEGIN" { inerr = 1; nrec = 0; next }
line == "VALGRINDERROR-END" {
	inerr = 0
	flush_rec(rec[1] ~ / lost in loss record / ? "leaks" : "errors")
	next
}
inerr { rec[++nrec] = line; next }
END {
	printf "%d\n%d\n%d\n%d\n%d\n%d\n", payext_errors, payext_leaks, other_errors, other_leaks, unsuppressed, suppressed > (report "/counts")
	for (k in summary) printf "%6d  %s\n", summary[k], k > (report "/summary")
	for (k in used) printf "%6d  %s\n", used[k], k > (report "/suppressed")
}' "$vgdir"/vg.*.log
# other_errors are postgres's own, reported through unsuppressed.
# shellcheck disable=SC2034
{ read -r payext_errors; read -r payext_leaks; read -r other_errors; read -r other_leaks
  read -r unsuppressed; read -r suppressed; } <"$report/counts"
nlogs=$(find "$vgdir" -maxdepth 1 -name 'vg.*.log' | wc -l)

echo "valgrind: $nlogs processes checked"
echo "valgrind: $suppressed errors suppressed (known postgres false positives, test/valgrind/postgres.supp):"
[ -s "$report/suppressed" ] && sort -rn "$report/suppressed"
echo "valgrind: $unsuppressed errors not suppressed, $payext_errors of them with a payext frame"
if [ -s "$report/summary" ]; then
	echo "valgrind: errors wholly inside postgres/libc, by kind and first postgres frames:"
	sort -rn "$report/summary"
fi
echo "valgrind: definite leaks: $payext_leaks with a payext frame, $other_leaks inside postgres/libc (not counted)"
[ -s "$report/payext_errors" ] && { echo "--- errors with a payext frame"; cat "$report/payext_errors"; }
[ -s "$report/payext_leaks" ] && { echo "--- leaks with a payext frame"; cat "$report/payext_leaks"; }

verdict=ok
problems=()
[ "$tests_ok" = 1 ] || problems+=("test output differs")
[ "$payext_errors" = 0 ] || problems+=("$payext_errors payext errors")
[ "$payext_leaks" = 0 ] || problems+=("$payext_leaks payext leaks")
[ "$unsuppressed" = 0 ] || problems+=("$unsuppressed unsuppressed errors")
[ -z "$unfinished" ] || problems+=("unfinished logs: $unfinished")
[ "$server_status" = 0 ] || [ "$unsuppressed" != 0 ] || problems+=("postmaster exited with $server_status")
[ ${#problems[@]} = 0 ] || verdict="FAILED (${problems[*]})"
echo "valgrind: $suites under memcheck in $((SECONDS - t0)) s, $nlogs processes, $suppressed errors suppressed: $verdict"
[ "$verdict" = ok ]
