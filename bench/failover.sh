#!/bin/sh
# Measures takeover time on loopback: runs the demo cluster (demo/cluster.sh)
# RUNS times for each heartbeat interval and prints, per interval, the time
# from SIGKILL of the primary's daemon and worker to the secondary running
# the resource: min, median, max. The expected bound (hastmon(8)) with
# complaint_count 3 is about (3 + 3) hb + hooks; see README.
set -eu
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
intervals=${INTERVALS:-"0.2 0.5 1"}
cargo build --quiet --release
printf '%-8s %-6s %-8s %-8s %-8s\n' hb runs min median max
for hb in $intervals; do
	times=$(
		i=0
		while [ $i -lt "$runs" ]; do
			HASTMON_DEMO_HB=$hb sh demo/cluster.sh 2>/dev/null |
				sed -n 's/^beta runs the resource \([0-9.]*\) s after alpha died\.$/\1/p'
			i=$((i + 1))
		done | sort -n
	)
	n=$(printf '%s\n' "$times" | grep -c . || true)
	[ "$n" -gt 0 ] || { echo "bench: no successful run for hb $hb" >&2; exit 1; }
	min=$(printf '%s\n' "$times" | head -n 1)
	max=$(printf '%s\n' "$times" | tail -n 1)
	med=$(printf '%s\n' "$times" | sed -n "$(((n + 1) / 2))p")
	printf '%-8s %-6s %-8s %-8s %-8s\n' "$hb" "$n" "$min" "$med" "$max"
done
