#!/usr/bin/env bash
# Runs a command against N payext partitions behind a PL/Proxy router, each
# a throwaway cluster of its own on loopback, then stops and removes them
# all, whether the command succeeded or not (DESIGN.md, "More than one
# node"; docs/partitions.md).
#
#   scripts/with_partitions.sh N COMMAND [ARG...]
#
# N is a power of two from 1 to 16.  Partition p (0 .. N-1) is database
# payext_p<p> of its own cluster, with payext preloaded, created and fixed
# at partition p (set_partition).  The router is database payext_router of
# another cluster, with plproxy and payext_router, configured with the
# partitions in order (configure_partitions, which checks each one's
# number).  The command sees libpq's PGHOST, PGPORT, PGUSER and PGDATABASE
# pointing at the router, PAYEXT_PARTITIONS (the partitions' connection
# URIs, one per word, partition 0 first) and PAYEXT_PARTITION_DATA (their
# data directories, likewise), PAYEXT_PGCTL (pg_ctl, as the clusters'
# owner) for tests that stop and start a partition, and PAYEXT_ROUTER_DATA
# (the router's data directory) for those that stop the router.  Where
# pg_cron is installed, the router runs payext.resume_sagas() every minute
# (job payext-resume-sagas).  With
# PAYEXT_PIN_PARTITIONS=1 each partition's server runs on one CPU (taskset;
# partition p on CPU p modulo the CPUs), for the scale benchmark.
set -euo pipefail

n=${1:-}
case "$n" in 1 | 2 | 4 | 8 | 16) ;; *)
	echo "usage: $0 N COMMAND [ARG...]   (N: 1, 2, 4, 8 or 16 partitions)" >&2
	exit 2
	;;
esac
shift
[ $# -gt 0 ] || { echo "usage: $0 N COMMAND [ARG...]" >&2; exit 2; }

PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)

# shellcheck source=scripts/owned_dir.sh
. "$(dirname "$0")/owned_dir.sh"
owned_dir payext-partitions
tmp=$owned_dir_path
# Ports base .. base+N for the router and the partitions.
# shellcheck source=scripts/ports.sh
. "$(dirname "$0")/ports.sh"
pick_ports $((n + 1))
base=$ports_base
names=()

cleanup() {
	status=$?
	for name in ${names[@]+"${names[@]}"}; do
		as_owner "$bindir/pg_ctl" -D "$tmp/$name" -m immediate stop >/dev/null 2>&1 || true
	done
	if [ "$status" != 0 ]; then
		for name in ${names[@]+"${names[@]}"}; do
			[ -f "$tmp/$name.log" ] || continue
			echo "--- $name: server log (last 20 lines) ---" >&2
			tail -n 20 "$tmp/$name.log" >&2 || true
		done
	fi
	rm -rf "$tmp"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME PORT SETTING...: a cluster in $tmp/NAME on 127.0.0.1:PORT.
start() {
	local name=$1 port=$2
	shift 2
	names+=("$name")
	as_owner "$bindir/initdb" -D "$tmp/$name" -U "$owner" -A trust \
		--locale=C.UTF-8 -E UTF8 >"$tmp/$name.initdb.log" 2>&1 ||
		{ cat "$tmp/$name.initdb.log" >&2; exit 1; }
	{
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$tmp'"
		echo "port = $port"
		echo "max_connections = 60"
		echo "shared_buffers = 32MB"
		for s in "$@"; do echo "$s"; done
	} >>"$tmp/$name/postgresql.conf"
	"${pin[@]+"${pin[@]}"}" "${as_owner[@]+"${as_owner[@]}"}" "$bindir/pg_ctl" -D "$tmp/$name" -l "$tmp/$name.log" -w -t 60 start >/dev/null
}
sql() {
	local port=$1 db=$2
	shift 2
	psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$owner" -d "$db" "$@"
}

partitions=()
connstrs=()
data=()
pin=()
for ((p = 0; p < n; p++)); do
	port=$((base + 1 + p))
	[ "${PAYEXT_PIN_PARTITIONS:-0}" != 1 ] || pin=(taskset -c "$((p % $(nproc)))")
	start "p$p" "$port" "shared_preload_libraries = 'payext'"
	createdb -h 127.0.0.1 -p "$port" -U "$owner" "payext_p$p"
	sql "$port" "payext_p$p" -c 'CREATE EXTENSION payext' -c "SELECT payext.set_partition($p)" >/dev/null
	partitions+=("postgresql://$owner@127.0.0.1:$port/payext_p$p")
	# No user=: PL/Proxy then connects as the calling role.
	connstrs+=("host=127.0.0.1 port=$port dbname=payext_p$p")
	data+=("$tmp/p$p")
done

pin=()
# pg_cron, where installed (the test suite installs it), resumes the sagas
# a call left open every minute, in background workers of the router.
cron=()
if [ -f "$("$PG_CONFIG" --sharedir)/extension/pg_cron.control" ]; then
	cron=("shared_preload_libraries = 'pg_cron'" "cron.database_name = 'payext_router'"
		"cron.use_background_workers = on" "max_worker_processes = 16")
fi
start router "$base" ${cron[@]+"${cron[@]}"}
createdb -h 127.0.0.1 -p "$base" -U "$owner" payext_router
list=$(printf "'%s'," "${connstrs[@]}")
sql "$base" payext_router -c 'CREATE EXTENSION payext_router CASCADE' \
	-c "SELECT payext.configure_partitions(ARRAY[${list%,}])" >/dev/null
if [ ${#cron[@]} -gt 0 ]; then
	sql "$base" payext_router -c 'CREATE EXTENSION pg_cron' \
		-c "SELECT cron.schedule('payext-resume-sagas', '* * * * *', 'SELECT payext.resume_sagas()')" >/dev/null
fi

export PGHOST=127.0.0.1 PGPORT=$base PGUSER=$owner PGDATABASE=payext_router
export PAYEXT_PARTITIONS="${partitions[*]}" PAYEXT_PARTITION_DATA="${data[*]}"
export PAYEXT_ROUTER_DATA="$tmp/router"
export PAYEXT_PGCTL="${as_owner[*]+"${as_owner[*]}"} $bindir/pg_ctl"
"$@"
