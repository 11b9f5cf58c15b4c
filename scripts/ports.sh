# shellcheck shell=bash
# pick_ports COUNT: sets ports_base so that ports_base .. ports_base+COUNT-1
# are below the kernel's range of ephemeral ports (the local ports of
# outgoing connections, which a listener cannot bind while one is in use:
# the router suite once lost its router's port to a client's connection)
# and have no listener now.  Sourced by the scripts that start servers.
pick_ports() {
	local count=$1 low=20000 high=32768 range taken p
	if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
		read -r range _ </proc/sys/net/ipv4/ip_local_port_range
		[ "$range" -gt $((low + 1000)) ] && high=$range
	fi
	for _ in $(seq 1 50); do
		ports_base=$((low + RANDOM % (high - low - count)))
		taken=0
		for p in $(seq 0 $((count - 1))); do
			if (exec 3<>"/dev/tcp/127.0.0.1/$((ports_base + p))") 2>/dev/null; then
				taken=1
				break
			fi
		done
		[ "$taken" = 1 ] || return 0
	done
	echo "pick_ports: no $count free ports below $high" >&2
	return 1
}
