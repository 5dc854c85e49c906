#!/bin/sh
# Packaging checks, runnable on any machine with mandoc, shellcheck and
# bmake (Debian: apt-get install mandoc shellcheck bmake):
#   - the manual pages are clean under mandoc -Tlint -Wwarning;
#   - the rc.d script and the scripts of port/ pass shellcheck, and the
#     port's copy of the rc.d script differs only by %%PREFIX%%;
#   - port/Makefile.crates and port/distinfo match Cargo.lock, the port's
#     version matches Cargo.toml's, and BSD make reads the port's Makefile;
#   - make -f Makefile.freebsd install stages exactly the files of
#     port/pkg-plist plus the rc.d script that USE_RC_SUBR installs.
# Release binaries are built only if they are not there yet.
set -eu
cd "$(dirname "$0")/../.."

missing=
for tool in mandoc shellcheck bmake gzip diff awk cargo; do
	command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
	echo "packaging-check: missing tools:$missing" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hastmon-packaging.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
fail() {
	echo "packaging-check: $*" >&2
	exit 1
}

echo "== mandoc -Tlint -Wwarning"
for page in man/hastmon.8 man/hastmon.conf.5 man/hastmonctl.8; do
	out=$(mandoc -Tlint -Wwarning "$page" 2>&1) || true
	[ -z "$out" ] || fail "$page is not lint-clean:
$out"
done

echo "== shellcheck"
shellcheck -s sh rc.d/hastmon port/files/hastmon.in port/update-crates.sh \
	tests/freebsd/packaging-check.sh
sed 's|%%PREFIX%%|/usr/local|g' port/files/hastmon.in >"$tmp/hastmon.in"
if ! diff -u rc.d/hastmon "$tmp/hastmon.in"; then
	fail "port/files/hastmon.in is not rc.d/hastmon with /usr/local as %%PREFIX%%"
fi

echo "== port"
port/update-crates.sh --check
version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
# A stand-in for bsd.port.mk that includes Makefile.crates as it does,
# and an empty sys.mk: the port needs no system rules to be read.
mkdir "$tmp/mk"
: >"$tmp/mk/sys.mk"
# shellcheck disable=SC2016 # a make variable, for bmake to expand
echo '.include "${.CURDIR}/Makefile.crates"' >"$tmp/mk/bsd.port.mk"
port_version=$(bmake -C port -m "$tmp/mk" -f Makefile -V DISTVERSION)
[ "$port_version" = "$version" ] ||
	fail "port/Makefile has DISTVERSION $port_version, Cargo.toml version $version"
crates=$(bmake -C port -m "$tmp/mk" -f Makefile -V CARGO_CRATES | wc -w)
sums=$(grep -c '^SHA256 ' port/distinfo)
[ "$crates" -eq "$sums" ] ||
	fail "port: $crates crates in CARGO_CRATES, $sums in distinfo"
# The port installs each file of the plist by name.
sed 's/^@sample //' port/pkg-plist | while read -r f; do
	base=$(basename "$f" .gz)
	grep -q "$base" port/Makefile || fail "port/Makefile does not install $f"
done

echo "== make -f Makefile.freebsd install"
release=${CARGO_TARGET_DIR:-target}/release
if [ ! -x "$release/hastmon" ] || [ ! -x "$release/hastmonctl" ]; then
	cargo build --release --locked
fi
stage=$tmp/stage
bmake -s -f Makefile.freebsd install DESTDIR="$stage" PREFIX=/usr/local
(cd "$stage" && find . ! -type d | sed 's|^\./||' | sort) >"$tmp/staged"
{
	sed -e 's/^@sample //' -e 's|^|usr/local/|' port/pkg-plist
	echo usr/local/etc/rc.d/hastmon
} | sort >"$tmp/expected"
if ! diff -u "$tmp/expected" "$tmp/staged"; then
	fail "staged files (+) differ from port/pkg-plist and the rc.d script (-)"
fi
for page in "$stage"/usr/local/share/man/man*/*.gz; do
	gzip -t "$page" || fail "$page is not a valid gzip file"
done
cmp -s rc.d/hastmon "$stage/usr/local/etc/rc.d/hastmon" ||
	fail "the staged rc.d script differs from rc.d/hastmon with PREFIX=/usr/local"

echo "packaging checks passed"
