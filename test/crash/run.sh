#!/usr/bin/env bash
# Crash recovery: the load driver's clients (test/load/driver.c, crash
# mode) move money of every kind while the server is killed at a random
# moment, in turn by an immediate stop (the postmaster SIGQUITs, then
# SIGKILLs, its children) and by SIGKILL to the postmaster and every child
# at once (nothing writes or flushes anything more); it is restarted, and
# the checker (test/load/verify.sql) proves over everything acknowledged so
# far, all rounds, that nothing acknowledged was lost and nothing was paid
# twice, and that the ledger adds up.  synchronous_commit stays on (the
# default): an acknowledged COMMIT is on disk.
#
# A call whose answer never came (the server died first) may or may not
# have happened.  The driver notes it as pending; the next round's driver
# first sends it again with the same references, as a client would after
# reconnecting, and must get the first attempt's transfer or a new one,
# never both (the checker's call_done_twice); after the last round the
# driver does the same once more.  Rounds go through the isolation levels
# in turn.
#
#   PAYEXT_CLUSTER=initdb scripts/with_cluster.sh test/crash/run.sh
#
# Needs with_cluster.sh's initdb mode (PAYEXT_PGDATA, PAYEXT_PGCTL).
# PAYEXT_CRASH_ROUNDS (default 3), PAYEXT_CRASH_CLIENTS (default 4),
# PAYEXT_CRASH_KILL: alternate (default), immediate or sigkill.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${PAYEXT_PGDATA:?run me through PAYEXT_CLUSTER=initdb scripts/with_cluster.sh}"
rounds=${PAYEXT_CRASH_ROUNDS:-3}
clients=${PAYEXT_CRASH_CLIENTS:-4}
kill_mode=${PAYEXT_CRASH_KILL:-alternate}
case "$kill_mode" in alternate | immediate | sigkill) ;; *) echo "PAYEXT_CRASH_KILL: alternate, immediate or sigkill" >&2; exit 2 ;; esac
db=payext_crash
driver=$(test/load/build.sh)
work=$(mktemp -d)
logs=$work/logs
mkdir -p "$logs"
trap 'rm -rf "$work"' EXIT
levels=("read committed" "repeatable read" "serializable")

# Kills the server: round 1, 3, ... by an immediate stop; round 2, 4, ...
# by SIGKILL to the postmaster and every process of the cluster at once.
# Its processes are those whose working directory is the data directory
# (the postmaster's, inherited by each child; backends are not in its
# process group, since each makes a group of its own).  Waits until none
# is left, so that the restart finds no one attached to the old shared
# memory.
server_pids() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/cwd" 2>/dev/null)" = "$data" ] && echo "${p#/proc/}"
	done
	return 0
}
kill_server() {
	local round=$1 pids n pm
	if [ "$kill_mode" = immediate ] || { [ "$kill_mode" = alternate ] && [ $(( round % 2 )) = 1 ]; }; then
		$PAYEXT_PGCTL -D "$PAYEXT_PGDATA" -m immediate stop >/dev/null
		echo "round $round: immediate stop"
		return
	fi
	pm=$(head -n 1 "$PAYEXT_PGDATA/postmaster.pid")
	pids=$(server_pids)
	n=$(wc -w <<<"$pids")
	# SIGKILL until no process is left, and the postmaster is reaped too (its
	# parent is init, and a new postmaster refuses to start while the
	# old one's pid, still in postmaster.pid, belongs to a zombie).
	for i in $(seq 1 600); do
		pids=$(server_pids)
		if [ -n "$pids" ]; then
			# shellcheck disable=SC2086
			kill -KILL $pids 2>/dev/null || true
		elif ! kill -0 "$pm" 2>/dev/null; then
			break
		elif [ "$i" -ge 100 ] && [ "$(awk '{ print $3 }' "/proc/$pm/stat" 2>/dev/null)" = Z ]; then
			# Nobody reaps it here (an init that does not): nothing of the
			# cluster runs any more, so its lock file may go.
			rm -f "$PAYEXT_PGDATA/postmaster.pid"
			break
		fi
		sleep 0.1
	done
	if [ -n "$(server_pids)" ] || { [ -f "$PAYEXT_PGDATA/postmaster.pid" ] && kill -0 "$pm" 2>/dev/null; }; then
		echo "crash: processes of the killed server are still there"
		exit 1
	fi
	if [ "$n" -lt 5 ]; then
		echo "crash: found only $n processes of the server to kill"
		exit 1
	fi
	echo "round $round: SIGKILL to all $n processes of the server"
}
data=$(readlink -f "$PAYEXT_PGDATA")

createdb "$db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f test/load/setup.sql >/dev/null

# Calls in flight at the last crash, for the next driver to send again.
pending=$work/pending-0
: >"$pending"

for round in $(seq 1 "$rounds"); do
	level=${levels[$(( (round - 1) % 3 ))]}
	tag=crash$round
	echo "--- crash round $round: $clients clients, $level"
	# Up to 60 s; the kill comes long before.  Losing the connection is
	# what crash mode expects; any other error fails the driver.
	"$driver" -C -d "dbname=$db" -c "$clients" -T 60 -i "$level" -t "$tag" -o "$logs" \
		-R "$pending" >"$work/driver-$round.out" 2>&1 &
	driver_pid=$!
	sleep "$(( RANDOM % 3 + 1 )).$(( RANDOM % 10 ))"
	kill_server "$round"
	status=0
	wait "$driver_pid" || status=$?
	cat "$work/driver-$round.out"
	if [ "$status" != 0 ]; then
		echo "crash: the driver failed in round $round"
		exit 1
	fi
	$PAYEXT_PGCTL -D "$PAYEXT_PGDATA" -l "$PAYEXT_PGDATA/../server.log" -w -t 60 start >/dev/null

	pending=$work/pending-$round
	cat "$logs/$tag"-*.pending >"$pending" 2>/dev/null || : >"$pending"
	acked=$(cat "$logs/$tag"-*.acks | wc -l)
	echo "round $round: $acked calls acknowledged before the kill, $(wc -l <"$pending") in flight"
	if [ "$acked" -lt 50 ]; then
		echo "crash: too little happened before the kill to prove anything"
		exit 1
	fi
	if ! test/load/verify.sh "$db" crash "$logs"/*.acks; then
		echo "crash: FAILED after round $round"
		exit 1
	fi
done

# The last round's calls in flight, sent again after the last restart.
echo "--- after the last crash: the calls in flight, again"
"$driver" -C -d "dbname=$db" -c 1 -T 0 -t final -o "$logs" -R "$pending"
if ! test/load/verify.sh "$db" crash "$logs"/*.acks; then
	echo "crash: FAILED after the last replays"
	exit 1
fi
echo "crash: every acknowledged call survived $rounds kills, none happened twice; the ledger verifies"
