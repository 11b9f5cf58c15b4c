#!/usr/bin/env bash
# Builds and runs the C unit tests of the pure units (no server), with
# address and undefined-behaviour sanitizers.
set -euo pipefail
cd "$(dirname "$0")/../.."

cc=${CC:-gcc}
build=test/unit/build
mkdir -p "$build"
status=0
for t in test/unit/test_*.c; do
	name=$(basename "$t" .c)
	unit=src/${name#test_}.c
	"$cc" -g -O1 -std=c11 -Wall -Wextra -Werror -Isrc -Itest/unit \
		-fsanitize=address,undefined -fno-sanitize-recover=all \
		"$t" "$unit" src/utf8.c -lcrypto -o "$build/$name"
	echo "--- $name"
	"$build/$name" || status=1
done
exit "$status"
