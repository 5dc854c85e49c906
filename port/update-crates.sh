#!/bin/sh
# Regenerates port/Makefile.crates and port/distinfo from Cargo.lock, in
# the form `make cargo-crates` and `make makesum` write them, without a
# ports tree or the network.  With --check, changes nothing and exits 1
# naming each file that is out of date.
#
# Crate sizes are not in Cargo.lock.  They come from cargo's download cache
# ($CARGO_HOME/registry/cache, filled by any build or `cargo fetch --locked`)
# or, for a crate whose checksum is unchanged, from the current distinfo:
# the same checksum means the same bytes, so a machine that only fetched the
# crates of its own platform can still check the list.
#
# The release tarball itself is not listed: `make makesum` in the ports
# tree adds it when a release is tagged.  The TIMESTAMP line is left alone
# while the crate lines stay the same, and --check ignores it.
set -eu

usage() {
	echo "usage: $0 [--check]" >&2
	exit 64
}
check=no
case $# in
0) ;;
1) [ "$1" = --check ] || usage; check=yes ;;
*) usage ;;
esac

port=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$port")
lock=$top/Cargo.lock
cache=${CARGO_HOME:-$HOME/.cargo}/registry/cache

tmp=$(mktemp -d "${TMPDIR:-/tmp}/update-crates.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# "name-version checksum" for every registry crate, in Cargo.lock's order
# (which is the sorted order the ports framework uses too).
awk '
function unquote(s) { gsub(/"/, "", s); return s }
function flush() {
	if (name == "" || source == "")
		return	# the project itself: it is the main distfile
	if (source !~ /^registry\+/) {
		printf "%s-%s comes from %s: only registry crates can be listed\n",
		    name, version, source > "/dev/stderr"
		bad = 1
	} else if (checksum == "") {
		printf "%s-%s has no checksum in Cargo.lock\n", name, version > "/dev/stderr"
		bad = 1
	} else
		print name "-" version, checksum
}
/^\[\[package\]\]$/ { flush(); name = version = source = checksum = "" }
/^name = /	{ name = unquote($3) }
/^version = /	{ version = unquote($3) }
/^source = /	{ source = unquote($3) }
/^checksum = /	{ checksum = unquote($3) }
END { flush(); exit bad }
' "$lock" >"$tmp/crates"

# "name-version size" for the crates cargo has downloaded.
: >"$tmp/cached"
while read -r crate _; do
	for f in "$cache"/*/"$crate.crate"; do
		if [ -f "$f" ]; then
			echo "$crate $(wc -c <"$f" | tr -d ' ')" >>"$tmp/cached"
			break
		fi
	done
done <"$tmp/crates"

awk '
NR == 1 { printf "CARGO_CRATES=\t%s", $1; next }
{ printf " \\\n\t\t%s", $1 }
END { if (NR) printf "\n" }
' "$tmp/crates" >"$tmp/Makefile.crates"

old=$port/distinfo
[ -f "$old" ] || old=/dev/null
# Keep the TIMESTAMP while the crate lines are unchanged; a new list is
# stamped with the time it was made, as makesum does.
awk -v cached="$tmp/cached" -v crates="$tmp/crates" '
BEGIN {
	while ((getline line < cached) > 0) {
		split(line, f, " ")
		size[f[1]] = f[2]
	}
}
/^SHA256 \(/	{ oldsum[$2] = $4 }
/^SIZE \(/	{ oldsize[$2] = $4 }
END {
	while ((getline line < crates) > 0) {
		split(line, f, " ")
		crate = f[1]; sum = f[2]
		key = "(rust/crates/" crate ".crate)"
		if (crate in size) {
			if (oldsum[key] == sum && (key in oldsize) && oldsize[key] != size[crate]) {
				printf "%s: %s bytes in the cargo cache, %s in distinfo for the same checksum\n",
				    crate, size[crate], oldsize[key] > "/dev/stderr"
				bad = 1
			}
			n = size[crate]
		} else if (oldsum[key] == sum && (key in oldsize)) {
			n = oldsize[key]
		} else {
			missing = missing " " crate
			continue
		}
		printf "SHA256 %s = %s\nSIZE %s = %s\n", key, sum, key, n
	}
	if (missing != "") {
		printf "no size known for:%s\n", missing > "/dev/stderr"
		print "(not in the cargo cache; run `cargo fetch --locked` first)" > "/dev/stderr"
		bad = 1
	}
	exit bad
}
' "$old" >"$tmp/body"

body() { grep -v '^TIMESTAMP = ' "$1" || true; }
if [ -f "$port/distinfo" ] && [ "$(body "$port/distinfo")" = "$(cat "$tmp/body")" ]; then
	cp "$port/distinfo" "$tmp/distinfo"
else
	{ echo "TIMESTAMP = $(date +%s)"; cat "$tmp/body"; } >"$tmp/distinfo"
fi

stale=0
for f in Makefile.crates distinfo; do
	if [ -f "$port/$f" ] && cmp -s "$tmp/$f" "$port/$f"; then
		continue
	fi
	if [ "$check" = yes ]; then
		echo "port/$f is out of date with Cargo.lock; run port/update-crates.sh" >&2
		diff -u "$port/$f" "$tmp/$f" >&2 || true
		stale=1
	else
		cp "$tmp/$f" "$port/$f"
		echo "updated port/$f"
	fi
done
exit "$stale"
