#!/usr/bin/env bash
# Runs a command inside a throwaway PostgreSQL cluster, then removes the
# cluster, whether the command succeeded or not.
#
#   scripts/with_cluster.sh [-o 'name=value']... COMMAND [ARG...]
#
# The server preloads payext (shared_preload_libraries), as payext asks of
# every server that charges payment codes.
# The command sees PGHOST, PGPORT, PGUSER and PGDATABASE=postgres.  With
# pg_virtualenv (postgresql-common) present it is used; otherwise, or with
# PAYEXT_CLUSTER=initdb, the cluster is made with initdb in a temporary
# directory, owned by the postgres user when we are root (PostgreSQL refuses
# to run as root).  In initdb mode PAYEXT_PGDATA and PAYEXT_PGCTL are
# exported too, for tests that stop and start the server themselves.
set -euo pipefail

# payext keeps failed payment-code guesses in shared memory: it is preloaded.
settings=(shared_preload_libraries=payext)
while [ $# -gt 0 ] && [ "$1" = "-o" ]; do
	settings+=("$2")
	shift 2
done
[ $# -gt 0 ] || { echo "usage: $0 [-o 'name=value']... COMMAND [ARG...]" >&2; exit 2; }

PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
mode=${PAYEXT_CLUSTER:-auto}
if [ "$mode" = auto ]; then
	if command -v pg_virtualenv >/dev/null 2>&1; then mode=virtualenv; else mode=initdb; fi
fi

if [ "$mode" = virtualenv ]; then
	version=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
	args=(-t -v "$version")
	for s in ${settings[@]+"${settings[@]}"}; do args+=(-o "$s"); done
	exec pg_virtualenv "${args[@]}" env PGDATABASE=postgres "$@"
fi

# initdb mode
# shellcheck source=scripts/owned_dir.sh
. "$(dirname "$0")/owned_dir.sh"
owned_dir payext-cluster
tmp=$owned_dir_path
pgdata=$tmp/data
log=$tmp/server.log
# shellcheck source=scripts/ports.sh
. "$(dirname "$0")/ports.sh"
pick_ports 1
port=$ports_base

cleanup() {
	status=$?
	as_owner "$bindir/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
	if [ "$status" != 0 ] && [ -f "$log" ]; then
		echo "--- server log (last 60 lines) ---" >&2
		tail -n 60 "$log" >&2 || true
	fi
	rm -rf "$tmp"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_owner "$bindir/initdb" -D "$pgdata" -U "$owner" -A trust \
	--locale=C.UTF-8 -E UTF8 >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; exit 1; }
{
	echo "listen_addresses = ''"
	echo "unix_socket_directories = '$tmp'"
	echo "port = $port"
	echo "fsync = on"
	for s in ${settings[@]+"${settings[@]}"}; do echo "$s"; done
} >>"$pgdata/postgresql.conf"
as_owner "$bindir/pg_ctl" -D "$pgdata" -l "$log" -w -t 60 start >/dev/null

export PGHOST=$tmp PGPORT=$port PGUSER=$owner PGDATABASE=postgres
export PAYEXT_PGDATA=$pgdata PAYEXT_PGCTL="${as_owner[*]+"${as_owner[*]}"} $bindir/pg_ctl"
"$@"
