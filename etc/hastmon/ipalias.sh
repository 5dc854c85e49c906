#!/bin/sh
# hastmon exec program: an IP address that follows the primary, as an
# alias on an interface, or with vhid set as a CARP address (carp(4)).
#
# Called by hastmon as "ipalias.sh event resource [oldrole newrole]"
# (see "The exec program" in hastmon(8)).  Copy it to
# /usr/local/etc/hastmon/, set the address below, and name it in
# hastmon.conf:
#	exec /usr/local/etc/hastmon/ipalias.sh

iface=em0
addr=10.0.0.10
prefix=32
# CARP: a vhid (and its password) gives the address carp(4)'s virtual MAC
# address, so that no ARP cache has to learn the new node (needs
# carp_load="YES" in loader.conf).  Empty: a plain alias.
vhid=
pass=

present()
{
	# 2: ifconfig failed (no such interface?), hastmon's "unknown".
	out=$(ifconfig "$iface" inet 2>&1) || return 2
	case $out in
	*"inet $addr "*) return 0 ;;
	esac
	return 1
}

case $1 in
start)
	present && exit 0
	if [ -n "$vhid" ]; then
		exec ifconfig "$iface" inet vhid "$vhid" pass "$pass" \
		    alias "$addr/$prefix"
	fi
	exec ifconfig "$iface" inet "$addr/$prefix" alias
	;;
stop)
	present
	case $? in
	0) exec ifconfig "$iface" inet "$addr" -alias ;;
	1) exit 0 ;;
	*) exit 1 ;;
	esac
	;;
status)
	present
	exit
	;;
esac
exit 0
