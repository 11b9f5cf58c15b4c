# shellcheck shell=bash disable=SC2034 # owner is for the scripts that source this file
# Sourced by the scripts that start a PostgreSQL server of their own.
#
#   owned_dir PREFIX
#
# makes a temporary directory /tmp/PREFIX.XXXXXX for a cluster and sets
# owned_dir_path to it, owner to the role that will run the server and
# as_owner to the command prefix that runs a command as that role: the
# postgres user (made if missing) when we are root, since PostgreSQL
# refuses to run as root; ourselves otherwise.  as_owner CMD... runs CMD so.
owned_dir() {
	owned_dir_path=$(mktemp -d "/tmp/$1.XXXXXX")
	chmod 755 "$owned_dir_path"
	as_owner=()
	owner=$(id -un)
	if [ "$(id -u)" = 0 ]; then
		owner=postgres
		id postgres >/dev/null 2>&1 ||
			useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
		chown postgres "$owned_dir_path"
		as_owner=(runuser -u postgres --)
	fi
}
as_owner() { "${as_owner[@]+"${as_owner[@]}"}" "$@"; }
