#!/usr/bin/env bash
# The whole test suite in a throwaway cluster.  Expects payext built and
# installed (scripts/quickstart.sh test does both, then calls this).
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/with_cluster.sh scripts/run_suites.sh "$@"
