#!/usr/bin/env bash
# Formats payext's C the way PostgreSQL's pgindent formats PostgreSQL: Debian's
# pg_bsd_indent (package pg-bsd-indent) with pgindent's options and our
# typedefs list, src/typedefs.list.
#
#   scripts/indent.sh              # format every C file in place (make indent)
#   scripts/indent.sh --check      # change nothing; list the files that would
#                                  # change, show the diff, exit 1 if any
#   scripts/indent.sh FILE...      # only these files
#
# pg_bsd_indent 2.1.1 rewrites a raw 0x80 byte inside a string literal: write
# such characters as \x escapes (test/unit/test_plate.c does).
#
# pg_bsd_indent needs the names of types to lay out declarations: the list
# holds the typedefs our objects use, read from their debug information as
# PostgreSQL's buildfarm does (scripts/typedefs.sh, `make typedefs`).
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
if [ "${1:-}" = --check ]; then
	check=true
	shift
fi

indent=${PG_BSD_INDENT:-pg_bsd_indent}
command -v "$indent" >/dev/null 2>&1 || {
	echo "indent: $indent not found (Debian: apt-get install pg-bsd-indent)" >&2
	exit 2
}
typedefs=src/typedefs.list
[ -f "$typedefs" ] || { echo "indent: $typedefs is missing (make typedefs)" >&2; exit 2; }

files=("$@")
if [ ${#files[@]} = 0 ]; then
	mapfile -t files < <(git ls-files -- 'src/*.[ch]' 'test/*.[ch]' 'bench/*.[ch]' 2>/dev/null ||
		find src test bench -name '*.[ch]' -not -path '*/build/*')
fi

# pgindent's standard options (src/tools/pgindent in PostgreSQL 15).
opts=(-bad -bap -bbb -bc -bl -cli1 -cp33 -cdb -nce -d0 -di12 -nfc1 -i4 -l79
	-lp -lpl -nip -npro -sac -tpg -ts4 "-U$typedefs")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Formats $1 into $2.  As pgindent does around pg_bsd_indent: block comments
# that open with "/* ---" keep their layout (indent leaves "/*-" alone), and
# a function's pointer return type reads "type *" on its own line.
format() {
	sed -e 's|/\* \{1,\}---|/*---X_X|g' "$1" >"$work/in.c"
	"$indent" "${opts[@]}" "$work/in.c" "$work/out.c" 2>"$work/err" || {
		cat "$work/err" >&2
		return 1
	}
	if [ -s "$work/err" ]; then
		echo "indent: $1:" >&2
		cat "$work/err" >&2
		return 1
	fi
	sed -E -e 's|/\*---X_X|/* ---|g' -e 's|^([A-Za-z_][^ 	]*)[ 	]+\*$|\1 *|' \
		"$work/out.c" >"$2"
}

changed=0
for f in "${files[@]}"; do
	format "$f" "$work/formatted"
	if ! cmp -s "$f" "$work/formatted"; then
		changed=$((changed + 1))
		if $check; then
			echo "indent: $f is not formatted (make indent)"
			diff -u "$f" "$work/formatted" | head -n 40 || true
		else
			cp "$work/formatted" "$f"
			echo "indent: formatted $f"
		fi
	fi
done

if $check; then
	if [ "$changed" != 0 ]; then
		echo "indent: $changed of ${#files[@]} C files would change"
		exit 1
	fi
	echo "indent: ${#files[@]} C files formatted as pgindent formats them"
fi
