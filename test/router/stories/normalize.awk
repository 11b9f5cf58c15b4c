# Drops what a router adds to a single node's answers but does not change
# them: PL/Proxy's prefix on a partition's error, "Remote " before its
# detail and hint, CONTEXT blocks (which functions ran is no answer), and
# PL/Proxy's notice that it opens a new connection after an error; and
# what is new on every run: the partitions' ports, event channels' keyed
# names, and which partition refused a role first when all were asked.
/^NOTICE:  PL\/Proxy: dropping stale conn$/ { next }
/^CONTEXT:  / { incontext = 1; next }
incontext && /^(PL\/pgSQL function|SQL statement|SQL function|PL\/Proxy function|Remote context|[ \t])/ { next }
{ incontext = 0 }
{
	sub(/^ERROR:  payext\.[a-z_]+\([0-9]+\): \[payext_p[0-9]+\] REMOTE ERROR: /, "ERROR:  ")
	sub(/^WARNING:  payext\.[a-z_]+\([0-9]+\): \[payext_p[0-9]+\] REMOTE WARNING: /, "WARNING:  ")
	sub(/^DETAIL:  Remote detail: /, "DETAIL:  ")
	sub(/^HINT:  Remote hint: /, "HINT:  ")
	gsub(/port [0-9]+ failed/, "port N failed")
	gsub(/_events_[0-9a-f]+/, "_events_KEYED")
	gsub(/\[payext_p[0-9]+\] PQconnectPoll/, "[payext_pN] PQconnectPoll")
	print
}
