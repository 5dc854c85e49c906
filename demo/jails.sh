#!/bin/sh
# The demo cluster with a network stack per node, as one tests before
# production: alpha (primary), beta (secondary) and watcher (watchdog) in
# three VNET jails, each with one end of an epair(4) whose other end is a
# member of an if_bridge(4) bridge on the host, addresses 10.99.0.1-3/24.
# It waits until alpha runs the resource, pulls alpha's cable (the host's
# end of its epair goes down), and shows beta taking over and alpha
# stopping its own copy once its silence limit has passed.  Everything it
# made (jails, epairs, bridge, files) is removed on exit.
#
# FreeBSD 14 or later, as root, with hastmon installed (HASTMON_BIN: the
# directory of the programs) and its "hastmon" user.  The jails share the
# host's file system.  Never run: no FreeBSD host was at hand; it is only
# checked with shellcheck.
set -eu
bin=${HASTMON_BIN:-/usr/local/sbin}
hb=${HASTMON_DEMO_HB:-1}
port=8458
net=10.99.0
nodes="alpha beta watcher"
dir=$(mktemp -d /tmp/hastmon-jails.XXXXXX)
bridge=
epairs=

cleanup() {
	for n in $nodes; do
		jail -r "hastmon-$n" 2>/dev/null || true
	done
	for e in $epairs; do
		ifconfig "${e}a" destroy 2>/dev/null || true
	done
	[ -z "$bridge" ] || ifconfig "$bridge" destroy
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

kldload -n if_bridge if_epair
bridge=$(ifconfig bridge create)
ifconfig "$bridge" up

i=0
for n in $nodes; do
	i=$((i + 1))
	mkdir "$dir/$n"
	e=$(ifconfig epair create)
	e=${e%a}
	epairs="$epairs $e"
	ifconfig "$bridge" addm "${e}a"
	ifconfig "${e}a" up
	jail -c name="hastmon-$n" host.hostname="$n" path=/ vnet persist \
	    vnet.interface="${e}b"
	jexec "hastmon-$n" ifconfig lo0 up
	jexec "hastmon-$n" ifconfig "${e}b" inet "$net.$i/24" up
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
listen tcp4://$net.$i:$port
resource www {
	exec $dir/$n/hook.sh
	heartbeat_interval $hb
	timeout $hb
	friends $net.3
	on alpha { remote $net.2 priority 1 role_on_start primary }
	on beta { remote $net.1 priority 2 role_on_start secondary }
	on watcher { remote $net.1 $net.2 role_on_start watchdog }
}
CONF
	jexec "hastmon-$n" "$bin/hastmon" -F -c "$dir/$n/hastmon.conf" \
	    -P "$dir/$n/pid" >"$dir/$n/log" 2>&1 &
done
alpha_epair=${epairs# }
alpha_epair=${alpha_epair%% *}

status() { "$bin/hastmonctl" status -n "$1" -c "$dir/$1/hastmon.conf" || [ $? -eq 2 ]; }
waitfor() { # seconds, what, test command...
	t=$1 what=$2
	shift 2
	until "$@" 2>/dev/null; do
		t=$((t - 1))
		[ "$t" -gt 0 ] || { echo "demo: timed out waiting for $what" >&2; exit 1; }
		sleep 1
	done
}
watcher_sees() { status watcher | grep -q "$net.$1:$port (primary/run)"; }

waitfor 60 "alpha to run the resource" watcher_sees 1
status watcher
echo "Pulling alpha's cable (${alpha_epair}a down)."
ifconfig "${alpha_epair}a" down
waitfor 120 "beta to take over" test -f "$dir/beta/running"
echo "beta runs the resource."
waitfor 120 "alpha to stop its copy" sh -c "! test -f '$dir/alpha/running'"
echo "alpha stopped its copy: its silence limit passed."
status beta
printf '\nHooks, in order:\n'
cat "$dir/timeline"
