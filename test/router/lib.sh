# shellcheck shell=bash
# What the router's test scripts share; each sets `suite` (its name in
# messages) and then sources this file.

# fail MESSAGE: the script's failure, and its end.
fail() { echo "router ${suite:?}: FAILED: $*" >&2; exit 1; }
# q ARG...: psql, quiet, one unaligned value per line, stopping at an error.
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
# sqlstate SQL: the SQLSTATE of the statement's error, or "ok".
sqlstate() {
	local out
	if out=$(psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate -c "$1" 2>&1); then
		echo ok
	else
		sed -n 's/^.*ERROR: *\([0-9A-Z]\{5\}\).*$/\1/p' <<<"$out" | head -n 1
	fi
}
