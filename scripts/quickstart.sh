#!/usr/bin/env bash
# From a fresh Debian 12 machine (or any with PostgreSQL 15 packages):
# installs what is missing, builds and installs payext, then runs the demo
# or the whole test suite in a throwaway cluster that is removed afterwards.
#
#   scripts/quickstart.sh demo     # the story of a wallet and a merchant
#   scripts/quickstart.sh test     # every suite; ends "suites: N passed, M failed"
#   scripts/quickstart.sh bench    # the benchmarks (bench/run.sh), a release build
#
# Uses sudo for apt-get and `make install` when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-demo}
case "$what" in demo | test | bench) ;; *) echo "usage: $0 demo|test|bench" >&2; exit 2 ;; esac

as_root=()
[ "$(id -u)" = 0 ] || as_root=(sudo)

packages=(make gcc postgresql-15 postgresql-common postgresql-server-dev-15
	postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl libssl-dev)
# The test suite also builds C unit tests and fuzzers with sanitizers, runs
# the regress suite under valgrind, checks formatting and shell scripts, and
# runs partitions behind a PL/Proxy router, whose sagas pg_cron resumes.
if [ "$what" = test ]; then
	packages+=(clang libclang-rt-14-dev valgrind pg-bsd-indent shellcheck pgbouncer
		postgresql-15-plproxy postgresql-15-cron)
fi
# The benchmark draws its chart with gnuplot.
if [ "$what" = bench ]; then packages+=(gnuplot-nox); fi
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "== installing: ${missing[*]}"
	"${as_root[@]+"${as_root[@]}"}" apt-get update
	"${as_root[@]+"${as_root[@]}"}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Build against PostgreSQL 15 even where other versions are installed.
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
echo "== building payext against $("$PG_CONFIG" --version)"
if [ "$what" = test ]; then
	# Tests build with Assert() enabled and warnings as errors.
	make -s clean
	make -s PAYEXT_DEV=1
elif [ "$what" = bench ]; then
	# Measure the release build, never one left over with Assert() in it.
	make -s clean
	make -s
else
	make -s
fi
"${as_root[@]+"${as_root[@]}"}" make -s install PG_CONFIG="$PG_CONFIG"
if [ "$what" = bench ]; then
	# The floor without the executor (bench/floorc/), a measurement only.
	make -s -C bench/floorc clean all PG_CONFIG="$PG_CONFIG"
	"${as_root[@]+"${as_root[@]}"}" make -s -C bench/floorc install PG_CONFIG="$PG_CONFIG"
fi

if [ "$what" = demo ]; then
	exec scripts/with_cluster.sh make -s demo PG_CONFIG="$PG_CONFIG"
fi
if [ "$what" = bench ]; then
	# A cluster of its own (initdb), sized for the population; the run
	# changes synchronous_commit per pgbench run itself.
	exec env PAYEXT_CLUSTER=initdb scripts/with_cluster.sh \
		-o shared_buffers=1GB -o max_connections=50 -o max_wal_size=4GB \
		-o checkpoint_timeout=30min bench/run.sh
fi
exec scripts/test_all.sh
