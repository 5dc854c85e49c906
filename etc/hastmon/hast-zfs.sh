#!/bin/sh
# hastmon exec program: a ZFS pool on HAST providers (hast.conf(5)),
# imported on the primary, its HAST resource secondary everywhere else.
#
# Called by hastmon as "hast-zfs.sh event resource [oldrole newrole]"
# (see "The exec program" in hastmon(8)).  Copy it to
# /usr/local/etc/hastmon/, set the names below, and name it in
# hastmon.conf:
#	exec /usr/local/etc/hastmon/hast-zfs.sh
# hastd must run on both nodes (hastd_enable="YES"), and the pool must be
# left out of zpool.cache's automatic import: only hastmon imports it.

# The HAST resource and the pool on /dev/hast/$hast; by default both are
# named like the hastmon resource.
hast=$2
pool=$2
# hastd creates /dev/hast/$hast shortly after the role change: how many
# one-second tries the import gets.
tries=10

imported()
{
	zpool list -H -o name "$pool" >/dev/null 2>&1
}

case $1 in
start)
	imported && exit 0
	# Without the HAST role nothing may touch the pool.
	hastctl role primary "$hast" || exit 1
	i=1
	until zpool import -f "$pool"; do
		[ "$i" -lt "$tries" ] || exit 1
		i=$((i + 1))
		sleep 1
	done
	;;
stop)
	if imported; then
		# Keep the role while the pool is imported: writes would fail.
		zpool export "$pool" || exit 1
	fi
	exec hastctl role secondary "$hast"
	;;
status)
	imported
	exit
	;;
role)
	# A node that is not primary receives the primary's writes.
	case $4 in
	secondary) exec hastctl role secondary "$hast" ;;
	esac
	;;
esac
exit 0
