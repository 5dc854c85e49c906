#!/bin/sh
# hastmon exec program: runs an rc.d(8) service on the primary only.
#
# Called by hastmon as "service.sh event resource [oldrole newrole]"
# (see "The exec program" in hastmon(8)).  Copy it to
# /usr/local/etc/hastmon/, set svc below, and name it in hastmon.conf:
#	exec /usr/local/etc/hastmon/service.sh
# Leave the service out of rc.conf on every node: hastmon starts it with
# "onestart", on one node at a time.

# The rc.d service; by default the one named like the hastmon resource.
svc=$2

running()
{
	service "$svc" onestatus >/dev/null 2>&1
}

case $1 in
start)
	# rc.subr refuses to start a running service: already done.
	running && exit 0
	exec service "$svc" onestart
	;;
stop)
	running || exit 0
	exec service "$svc" onestop
	;;
status)
	# onestatus exits 0 when it runs and 1 when it does not, as hastmon
	# wants; anything else reaches hastmon as "unknown".
	exec service "$svc" onestatus >/dev/null 2>&1
	;;
esac
exit 0
