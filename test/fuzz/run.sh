#!/usr/bin/env bash
# Builds the libFuzzer targets with address and undefined-behaviour
# sanitizers and runs each for a while (default 15 s each; PAYEXT_FUZZ_SECONDS
# for a longer run by hand).  Needs clang and libclang-rt-14-dev.
#
#   test/fuzz/run.sh                         # the short run of the test suite
#   PAYEXT_FUZZ_SECONDS=3600 test/fuzz/run.sh  # an hour
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${PAYEXT_FUZZ_SECONDS:-15}
clang=${CLANG:-$(command -v clang-14 || command -v clang)}
build=test/fuzz/build
mkdir -p "$build"

status=0
for target in code_format tariff plate ident; do
	"$clang" -g -O1 -std=c11 -Wall -Wextra -Werror -Isrc \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		"test/fuzz/fuzz_$target.c" "src/$target.c" src/utf8.c -lcrypto -o "$build/fuzz_$target"
	# New inputs go to a scratch copy; the committed corpus stays as it is.
	work=$(mktemp -d)
	cp test/fuzz/corpus/$target/* "$work/"
	if "$build/fuzz_$target" -max_total_time="$seconds" -print_final_stats=1 \
		"$work" >"$build/fuzz_$target.log" 2>&1; then
		echo "fuzz $target: ok, $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/fuzz_$target.log" | grep -o '[0-9]*$') runs in ${seconds} s"
	else
		echo "fuzz $target: FAILED"
		tail -n 40 "$build/fuzz_$target.log"
		status=1
	fi
	rm -rf "$work"
done
exit "$status"
