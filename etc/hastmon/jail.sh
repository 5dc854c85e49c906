#!/bin/sh
# hastmon exec program: a jail(8) from jail.conf(5) that runs on the
# primary only.
#
# Called by hastmon as "jail.sh event resource [oldrole newrole]" (see
# "The exec program" in hastmon(8)).  Copy it to /usr/local/etc/hastmon/,
# set the jail below, and name it in hastmon.conf:
#	exec /usr/local/etc/hastmon/jail.sh
# Leave the jail out of jail_list and jail_enable on every node: hastmon
# creates it, on one node at a time.  A jail on a HAST-backed pool needs
# the pool first: call both from one exec program (hast-zfs.sh first on
# start, last on stop), since hastmon orders the events of one resource,
# not those of two.

# The jail in /etc/jail.conf; by default the one named like the resource.
jail=$2

running()
{
	jls -j "$jail" jid >/dev/null 2>&1
}

case $1 in
start)
	running && exit 0
	exec jail -c "$jail"
	;;
stop)
	running || exit 0
	exec jail -r "$jail"
	;;
status)
	running
	exit
	;;
esac
exit 0
