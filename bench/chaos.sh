#!/bin/sh
# The fault campaign outside CI (tests/chaos.rs): real daemons in network
# namespaces, faults drawn from seeds. Needs root, ip, bridge and nft.
#
#   bench/chaos.sh --minutes N [--jobs J]   random seeds until N minutes are up
#   bench/chaos.sh --seed S                 one seed, with its timeline
#   bench/chaos.sh --loss [--loss-minutes M] false failovers under loss:
#       hb 0.1 s, cc 2, 5 % loss on every link, and hb 1 s, cc 2, 20 %
#       (timeout 1 s), M minutes each (default 10), both at once
#   bench/chaos.sh --list A-B               the schedules of seeds A..B
#
# Prints the campaign's table: schedules, faults of each kind, violations,
# the largest overlap against its bound, takeover time min/median/max
# against hastmon(8)'s bound. CARGO overrides the cargo command (for
# example "flock /tmp/cargo.lock cargo").
set -eu
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
minutes=
seed=
loss=
loss_minutes=10
list=
jobs=${CHAOS_JOBS:-4}
while [ $# -gt 0 ]; do
	case $1 in
	--minutes) minutes=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--loss) loss=1; shift ;;
	--loss-minutes) loss_minutes=$2; shift 2 ;;
	--list) list=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	*) echo "usage: $0 --minutes N | --seed S | --loss [--loss-minutes M] | --list A-B [--jobs J]" >&2; exit 64 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "bench/chaos.sh: needs root (network namespaces)" >&2; exit 77; }

# Build once, then run the test binary directly, so that a long campaign
# does not hold cargo.
bin=$($cargo test --release --test chaos --no-run 2>&1 |
	sed -n 's/^ *Executable tests\/chaos.rs (\(.*\))$/\1/p' | tail -n 1)
[ -x "$bin" ] || { echo "bench/chaos.sh: could not build the chaos test" >&2; exit 70; }

run() { "$bin" campaign --ignored --exact --nocapture --test-threads 1; }
export CHAOS_JOBS="$jobs"
if [ -n "$list" ]; then
	CHAOS_LIST=$list run
elif [ -n "$seed" ]; then
	CHAOS_SEED=$seed run
elif [ -n "$loss" ]; then
	secs=$(awk "BEGIN { print $loss_minutes * 60 }")
	CHAOS_LOSS="100,2,1000,5,$secs;1000,2,1000,20,$secs" run
else
	CHAOS_MINUTES=${minutes:-30} run
fi
