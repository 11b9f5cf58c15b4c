#!/usr/bin/env bash
# The lint suite: C formatted as pgindent formats it (scripts/indent.sh
# --check; `make indent` fixes it), bench/floorc built with -Werror, every shell script clean under the
# linter shellcheck, and the version the same in the control file and in
# META.json.  Needs no server.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

status=0
scripts/indent.sh --check || status=1

command -v shellcheck >/dev/null 2>&1 || { echo "lint: shellcheck not found (Debian: apt-get install shellcheck)" >&2; exit 2; }
mapfile -t shells < <(git ls-files -- '*.sh' '.ci/run' 2>/dev/null || find . -name '*.sh' -not -path './.git/*')
if shellcheck -x "${shells[@]}"; then
	echo "lint: ${#shells[@]} shell scripts pass shellcheck"
else
	echo "lint: shellcheck found problems"
	status=1
fi
# bench/floorc (a measurement of the benchmark's, built nowhere else in the
# tests) compiles warning-free, so that it does not rot.
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if make -s -C bench/floorc clean all COPT=-Werror PG_CONFIG="$pg_config" >/dev/null; then
	echo "lint: bench/floorc builds without warnings"
else
	echo "lint: bench/floorc does not build cleanly"
	status=1
fi
make -s -C bench/floorc clean PG_CONFIG="$pg_config" >/dev/null 2>&1 || true
version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" payext.control)
# The distribution's version and the extension's under "provides" (not the
# meta-spec's, which sits on one line with its url).
meta=$(grep -E '^ *"version": "[^"]*",?$' META.json | sed 's/.*: "//; s/",*$//' | sort -u)
if [ "$meta" = "$version" ]; then
	echo "lint: META.json and payext.control both say $version"
else
	echo "lint: META.json says $(echo "$meta" | paste -sd' ' -), payext.control says $version"
	status=1
fi
router=$(sed -n "s/^default_version = '\(.*\)'/\1/p" payext_router.control)
if [ "$router" = "$version" ]; then
	echo "lint: payext_router.control says $version too"
else
	echo "lint: payext_router.control says $router, payext.control $version"
	status=1
fi
exit "$status"
