#!/bin/sh
# A planned switchover with a slow `stop`, on loopback: three daemons
# (alpha primary, beta secondary, watcher) on 127.0.0.1-3, alpha's `stop`
# taking STOP_SECS (3) seconds, the two commands given in each order and
# both at once. Prints, per order, the time from the first command to
# beta's `start`, and how long both nodes ran the resource together:
# hastmon(8) promises none.
#   order               cmd->start   overlap   bound
# Usage: bench/switchover.sh     (RUNS=n repeats each order, default 1)
set -eu
cd "$(dirname "$0")/.."
cargo build --quiet --release
bin=$PWD/target/release
stop_secs=${STOP_SECS:-3}
runs=${RUNS:-1}
port=${PORT:-18558}
dir=$(mktemp -d "${TMPDIR:-/tmp}/hastmon-switch.XXXXXX")
nodes="alpha beta watcher"

halt() {
	for n in $nodes; do
		if [ -f "$dir/$n/pid" ]; then
			kill "$(cat "$dir/$n/pid")" 2>/dev/null || true
		fi
	done
	sleep 0.5
}
trap 'halt; rm -rf "$dir"' EXIT INT TERM

now() { date +%s.%N; }

setup() {
	rm -rf "${dir:?}"/*
	for n in $nodes; do
		mkdir "$dir/$n"
		cat >"$dir/$n/hook.sh" <<HOOK
#!/bin/sh
t() { echo "\$(date +%s.%N) $n \$1" >>"$dir/timeline"; }
case "\$1" in
status) [ -f "$dir/$n/running" ] && exit 0; exit 1 ;;
start) t start; touch "$dir/$n/running" ;;
stop) [ "$n" = alpha ] && sleep $stop_secs; rm -f "$dir/$n/running"; t stopped ;;
esac
exit 0
HOOK
		chmod +x "$dir/$n/hook.sh"
		cat >"$dir/$n/hastmon.conf" <<CONF
control uds://$dir/$n/ctl
on alpha { listen tcp4://127.0.0.1:$port }
on beta { listen tcp4://127.0.0.2:$port }
on watcher { listen tcp4://127.0.0.3:$port }
resource www {
	exec $dir/$n/hook.sh
	heartbeat_interval 0.2
	timeout 0.2
	complaint_count 3
	complaint_interval 20
	on alpha { remote tcp4://127.0.0.2:$port priority 2 role_on_start primary friends 127.0.0.3 }
	on beta { remote tcp4://127.0.0.1:$port priority 1 role_on_start secondary friends 127.0.0.3 }
	on watcher { remote tcp4://127.0.0.1:$port tcp4://127.0.0.2:$port role_on_start watchdog }
}
CONF
		"$bin/hastmon" -F -n "$n" -c "$dir/$n/hastmon.conf" -P "$dir/$n/pid" >"$dir/$n/log" 2>&1 &
	done
	waitfor 30 "alpha to run the resource" test -f "$dir/alpha/running"
	sleep 1
}

ctl() { n=$1; shift; "$bin/hastmonctl" "$@" -n "$n" -c "$dir/$n/hastmon.conf" || true; }
waitfor() {
	t=$(($1 * 20)); what=$2; shift 2
	while ! "$@" 2>/dev/null; do
		t=$((t - 1)); [ $t -gt 0 ] || { echo "bench: timed out waiting for $what" >&2; exit 1; }
		sleep 0.05
	done
}

# Overlap: from a node's `start` until the other node's `stopped`, while
# both are up; the timeline holds "time node start|stopped".
overlap() {
	sort -n "$dir/timeline" | awk '
		{ t = $1 + 0 }
		$2 == "alpha" && $3 == "start" { if (!a) { a = 1; if (b) since = t } }
		$2 == "alpha" && $3 == "stopped" { if (a && b) total += t - since; a = 0 }
		$2 == "beta" && $3 == "start" { if (!b) { b = 1; if (a) since = t } }
		$2 == "beta" && $3 == "stopped" { if (a && b) total += t - since; b = 0 }
		END { printf "%.3f", total }'
}

row() { # name, then the commands, "&" between them for "at once"
	name=$1; shift
	setup
	: >"$dir/timeline"
	echo "$(now) alpha start" >>"$dir/timeline" # alpha's copy runs
	t0=$(now)
	"$@"
	waitfor 60 "beta to run the resource" test -f "$dir/beta/running"
	tb=$(awk '$2 == "beta" && $3 == "start" { print $1; exit }' "$dir/timeline")
	took=$(awk -v a="$t0" -v b="$tb" 'BEGIN { printf "%.3f", b - a }')
	printf '%-28s %10s s %10s s %8s s\n' "$name" "$took" "$(overlap)" 0.000
	halt
}

in_order() { ctl alpha role secondary www; ctl beta role primary www; }
reverse() { ctl beta role primary www; ctl alpha role secondary www; }
at_once() {
	ctl alpha role secondary www &
	first=$!
	ctl beta role primary www
	wait "$first"
}

printf '%-28s %12s %12s %10s\n' order "cmd->start" overlap bound
i=0
while [ $i -lt "$runs" ]; do
	row "secondary, then primary" in_order
	row "primary, then secondary" reverse
	row "both at once" at_once
	i=$((i + 1))
done
