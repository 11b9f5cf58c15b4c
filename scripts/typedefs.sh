#!/usr/bin/env bash
# Writes src/typedefs.list, the type names scripts/indent.sh gives
# pg_bsd_indent: every typedef that payext's objects use (its own,
# PostgreSQL's, libc's, OpenSSL's, libpq's), read from their DWARF debug
# information the way PostgreSQL's buildfarm makes its list, plus the ones
# declared in our sources (a typedef used only in a header, a test not built).
#
#   make typedefs     # builds first, then runs this
#
# Run it after adding a type; commit the list with the change.
set -euo pipefail
cd "$(dirname "$0")/.."

objects=()
while IFS= read -r -d '' o; do objects+=("$o"); done < <(
	find src test -type f \( -name '*.o' -o -perm -u+x \) -not -name '*.sh' -print0)

{
	for o in ${objects[@]+"${objects[@]}"}; do
		# A DW_TAG_typedef entry names its type in the DW_AT_name that follows.
		objdump -W "$o" 2>/dev/null | awk '
			/DW_TAG_typedef/ { want = 1; next }
			/DW_TAG_/ { want = 0 }
			want && /DW_AT_name/ { print $NF; want = 0 }'
	done
	# typedef ... Name;  } Name;  typedef ret (*Name) (...)
	{
		grep -hoE '^\}[[:space:]]*[A-Za-z_][A-Za-z0-9_]*;' src/*.[ch] test/*/*.[ch] || true
	} | sed -E 's/^\}[[:space:]]*//; s/;$//'
	{
		grep -hoE 'typedef[^;{(]*[[:space:]*]([A-Za-z_][A-Za-z0-9_]*);' src/*.[ch] test/*/*.[ch] || true
	} | sed -E 's/.*[[:space:]*]([A-Za-z_][A-Za-z0-9_]*);$/\1/'
	{
		grep -hoE 'typedef[^;(]*\(\*[A-Za-z_][A-Za-z0-9_]*\)' src/*.[ch] test/*/*.[ch] || true
	} | sed -E 's/.*\(\*([A-Za-z_][A-Za-z0-9_]*)\)$/\1/'
	# bool is a macro in <stdbool.h>, __int128 a compiler keyword: types all
	# the same to pg_bsd_indent (pgindent adds bool by hand too).
	echo bool
	echo __int128
} | grep -E '^[A-Za-z_][A-Za-z0-9_]*$' | LC_ALL=C sort -u >src/typedefs.list
echo "typedefs: $(wc -l <src/typedefs.list) names in src/typedefs.list"
