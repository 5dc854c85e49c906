#!/bin/sh
# The local demo: a three-node cluster on loopback (alpha 127.0.0.1 primary,
# beta 127.0.0.2 secondary, watcher 127.0.0.3 watchdog), all real hastmon
# daemons. It waits until alpha runs the resource, kills alpha's daemon and
# worker with SIGKILL, and shows beta taking over, with the time it took.
# HASTMON_DEMO_HB sets the heartbeat interval (default 1 s; the timeout
# follows it), HASTMON_DEMO_PORT the port (default 18458).
# Linux routes all of 127.0.0.0/8 to lo; FreeBSD's lo0 has 127.0.0.1 only,
# so there (as root) the demo adds 127.0.0.2 and .3 to lo0 and removes them
# on exit.  demo/jails.sh runs the same failover in three VNET jails.
set -eu
cd "$(dirname "$0")/.."
cargo build --quiet --release
bin=$PWD/target/release
port=${HASTMON_DEMO_PORT:-18458}
hb=${HASTMON_DEMO_HB:-1}
dir=$(mktemp -d "${TMPDIR:-/tmp}/hastmon-demo.XXXXXX")
nodes="alpha beta watcher"

aliases=

cleanup() {
	for n in $nodes; do
		if [ -f "$dir/$n/pid" ]; then
			kill "$(cat "$dir/$n/pid")" 2>/dev/null || true
		fi
	done
	sleep 1
	for a in $aliases; do
		ifconfig lo0 inet "$a" -alias || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

if [ "$(uname -s)" = FreeBSD ]; then
	for a in 127.0.0.2 127.0.0.3; do
		case $(ifconfig lo0 inet) in
		*"inet $a "*) continue ;; # there already: not ours to remove
		esac
		if ! ifconfig lo0 inet "$a/32" alias; then
			echo "demo: cannot add $a to lo0 (run it as root)" >&2
			exit 1
		fi
		aliases="$aliases $a"
	done
fi

# Milliseconds since the epoch; whole seconds where date(1) has no %N.
now_ms() {
	t=$(date +%s%N)
	case $t in
	*[!0-9]*) echo $(($(date +%s) * 1000)) ;;
	*) echo $((t / 1000000)) ;;
	esac
}

# The "resource" of each node is a file; the hook records every call.
for n in $nodes; do
	mkdir "$dir/$n"
	cat >"$dir/$n/hook.sh" <<HOOK
#!/bin/sh
echo "\$(date +%T) $n: \$*" >>"$dir/timeline"
case "\$1" in
status) [ -f "$dir/$n/running" ] && exit 0; exit 1 ;;
start) touch "$dir/$n/running" ;;
stop) rm -f "$dir/$n/running" ;;
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
	heartbeat_interval $hb
	timeout $hb
	complaint_count 3
	complaint_interval 20
	on alpha { remote tcp4://127.0.0.2:$port priority 1 role_on_start primary friends 127.0.0.3 }
	on beta { remote tcp4://127.0.0.1:$port priority 2 role_on_start secondary friends 127.0.0.3 }
	on watcher { remote tcp4://127.0.0.1:$port tcp4://127.0.0.2:$port role_on_start watchdog }
}
CONF
done

ctl() { n=$1; shift; "$bin/hastmonctl" "$@" -n "$n" -c "$dir/$n/hastmon.conf"; }
# Exit status 2 (a resource not yet healthy in its role) is shown, not fatal.
show() { for n in "$@"; do printf '\n[%s]$ hastmonctl status\n' "$n"; ctl "$n" status || [ $? -eq 2 ]; done; }
waitfor() { # seconds, what, test command...
	t=$(($1 * 20)); what=$2; shift 2
	while ! "$@" 2>/dev/null; do
		t=$((t - 1)); [ $t -gt 0 ] || { echo "demo: timed out waiting for $what" >&2; exit 1; }
		sleep 0.05
	done
}

for n in $nodes; do
	"$bin/hastmon" -F -n "$n" -c "$dir/$n/hastmon.conf" -P "$dir/$n/pid" >"$dir/$n/log" 2>&1 &
done
echo "Started alpha, beta and watcher on 127.0.0.1-3, port $port."
watching() { ctl watcher status | grep -q "127.0.0.1:$port (primary/run)"; }
waitfor 30 "alpha to run the resource" watching
show alpha beta watcher

worker=$(ctl alpha status | sed -n 's/^  workerpid: //p')
printf '\nKilling alpha (daemon %s and worker %s) with SIGKILL.\n' "$(cat "$dir/alpha/pid")" "$worker"
start=$(now_ms)
kill -9 "$(cat "$dir/alpha/pid")" "$worker"
rm -f "$dir/alpha/pid"
waitfor 120 "beta to take over" test -f "$dir/beta/running"
end=$(now_ms)
ms=$((end - start))
printf 'beta runs the resource %d.%03d s after alpha died.\n' $((ms / 1000)) $((ms % 1000))
if [ -f "$dir/alpha/running" ]; then
	echo "alpha's copy still runs."
else
	echo "alpha's copy was stopped by alpha's guardian process (see 'alpha: stop' below)."
fi
waitfor 20 "the watchdog to see beta" sh -c "'$bin/hastmonctl' status -n watcher -c '$dir/watcher/hastmon.conf' | grep -q '127.0.0.2:$port (primary/run)'"
show beta watcher
printf '\nHooks, in order:\n'
cat "$dir/timeline"
