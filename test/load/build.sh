#!/usr/bin/env bash
# Builds the load driver (test/load/driver.c) into test/load/build/ and
# prints its path.  C11, libpq, every warning an error.
set -euo pipefail
cd "$(dirname "$0")/../.."

PG_CONFIG=${PG_CONFIG:-pg_config}
build=test/load/build
mkdir -p "$build"
"${CC:-gcc}" -std=c11 -O2 -g -Wall -Wextra -Werror \
	-I"$("$PG_CONFIG" --includedir)" test/load/driver.c \
	-L"$("$PG_CONFIG" --libdir)" -lpq -o "$build/driver"
echo "$build/driver"
