#!/bin/sh
# Packaging checks, runnable on any machine with mandoc, shellcheck and
# bmake (Debian: apt-get install mandoc shellcheck bmake):
#   - the manual pages are clean under mandoc -Tlint -Wwarning;
#   - the rc.d script, the example exec programs, the demos and the
#     scripts of port/ pass shellcheck, and the port's copy of the rc.d
#     script differs only by %%PREFIX%%;
#   - port/Makefile.crates and port/distinfo match Cargo.lock, the port's
#     version matches Cargo.toml's, and the port's post-install targets,
#     run by BSD make after a stand-in for USES=cargo's do-install, stage
#     exactly the files of port/pkg-plist;
#   - make -f Makefile.freebsd install stages exactly the files of
#     port/pkg-plist plus the rc.d script that USE_RC_SUBR installs;
#   - demo/cluster.sh, told it runs on FreeBSD, adds 127.0.0.2 and .3 to
#     lo0 and removes them on exit (its failover runs for real).
# Release binaries are built only if they are not there yet.  Nothing here
# runs on FreeBSD: the ports framework is stood in for.
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
	tests/freebsd/packaging-check.sh etc/hastmon/*.sh demo/*.sh
sed 's|%%PREFIX%%|/usr/local|g' port/files/hastmon.in >"$tmp/hastmon.in"
if ! diff -u rc.d/hastmon "$tmp/hastmon.in"; then
	fail "port/files/hastmon.in is not rc.d/hastmon with /usr/local as %%PREFIX%%"
fi

echo "== port"
port/update-crates.sh --check
version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
release=${CARGO_TARGET_DIR:-target}/release
if [ ! -x "$release/hastmon" ] || [ ! -x "$release/hastmonctl" ]; then
	cargo build --release --locked
fi
case $release in
/*) ;;
*) release=$PWD/$release ;;
esac
# Stand-ins for the ports framework: an empty sys.mk, and a bsd.port.mk
# that includes Makefile.crates as cargo.mk does, defines what the port's
# targets use, and stages as "make stage" would: the directories of the
# mtree, USES=cargo's do-install (cargo install puts the programs in
# bin/), then the port's post-install targets with the EXAMPLES option on.
mkdir "$tmp/mk"
: >"$tmp/mk/sys.mk"
# shellcheck disable=SC2016 # make variables, for bmake to expand
{
	echo '.include "${.CURDIR}/Makefile.crates"'
	echo "WRKSRC=	$PWD"
	echo "STAGEDIR=	$tmp/port-stage"
	echo 'PREFIX=	/usr/local'
	echo 'EXAMPLESDIR=	${PREFIX}/share/examples/${PORTNAME}'
	echo 'MV=	mv'
	echo 'MKDIR=	mkdir -p'
	echo 'INSTALL_MAN=	install -m 444'
	echo 'INSTALL_DATA=	install -m 444'
	echo 'INSTALL_SCRIPT=	install -m 555'
	echo 'stage: mtree do-install post-install post-install-EXAMPLES-on'
	echo 'mtree:'
	echo '.for d in bin sbin etc share/man/man5 share/man/man8 share/examples'
	printf '\tmkdir -p ${STAGEDIR}${PREFIX}/${d}\n'
	echo '.endfor'
	echo 'do-install:'
	printf '\tinstall -m 555 %s/hastmon %s/hastmonctl ${STAGEDIR}${PREFIX}/bin\n' \
		"$release" "$release"
} >"$tmp/mk/bsd.port.mk"
port_version=$(bmake -C port -m "$tmp/mk" -f Makefile -V DISTVERSION)
[ "$port_version" = "$version" ] ||
	fail "port/Makefile has DISTVERSION $port_version, Cargo.toml version $version"
crates=$(bmake -C port -m "$tmp/mk" -f Makefile -V CARGO_CRATES | wc -w)
sums=$(grep -c '^SHA256 ' port/distinfo)
[ "$crates" -eq "$sums" ] ||
	fail "port: $crates crates in CARGO_CRATES, $sums in distinfo"
bmake -s -C port -m "$tmp/mk" -f Makefile stage
(cd "$tmp/port-stage" && find . ! -type d | sed 's|^\./||' | sort) >"$tmp/port-staged"
# pkg-plist as the framework reads it with EXAMPLES on; it compresses the
# manual pages after post-install.
plist() {
	sed -e 's/^@sample //' -e 's/^%%PORTEXAMPLES%%//' \
		-e 's|%%EXAMPLESDIR%%|share/examples/hastmon|' \
		-e 's|^|usr/local/|' port/pkg-plist
}
plist | sed 's/\.gz$//' | sort >"$tmp/port-expected"
if ! diff -u "$tmp/port-expected" "$tmp/port-staged"; then
	fail "the port stages (+) other files than port/pkg-plist lists (-)"
fi

echo "== make -f Makefile.freebsd install"
stage=$tmp/stage
bmake -s -f Makefile.freebsd install DESTDIR="$stage" PREFIX=/usr/local
(cd "$stage" && find . ! -type d | sed 's|^\./||' | sort) >"$tmp/staged"
{
	plist
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

echo "== demo/cluster.sh as on FreeBSD (uname and ifconfig stood in)"
# The demo itself runs (Linux routes 127.0.0.2 and .3 to lo anyway); the
# stand-ins only record what it asks of FreeBSD's lo0, which has 127.0.0.1.
mkdir "$tmp/fbsd"
printf '#!/bin/sh\necho FreeBSD\n' >"$tmp/fbsd/uname"
# shellcheck disable=SC2016 # expanded by the stand-in, not here
printf '#!/bin/sh\necho "ifconfig $*" >>"%s"\n[ "$*" != "lo0 inet" ] || printf "\\tinet 127.0.0.1 netmask 0xff000000\\n"\n' \
	"$tmp/ifconfig.log" >"$tmp/fbsd/ifconfig"
chmod +x "$tmp/fbsd/uname" "$tmp/fbsd/ifconfig"
PATH="$tmp/fbsd:$PATH" HASTMON_DEMO_PORT=18459 sh demo/cluster.sh >"$tmp/demo.log" 2>&1 ||
	fail "demo/cluster.sh failed:
$(cat "$tmp/demo.log")"
grep -q "beta runs the resource" "$tmp/demo.log" ||
	fail "demo/cluster.sh showed no takeover:
$(cat "$tmp/demo.log")"
printf '%s\n' "ifconfig lo0 inet" "ifconfig lo0 inet 127.0.0.2/32 alias" \
	"ifconfig lo0 inet" "ifconfig lo0 inet 127.0.0.3/32 alias" \
	"ifconfig lo0 inet 127.0.0.2 -alias" "ifconfig lo0 inet 127.0.0.3 -alias" \
	>"$tmp/ifconfig.expected"
if ! diff -u "$tmp/ifconfig.expected" "$tmp/ifconfig.log"; then
	fail "demo/cluster.sh did not add and remove the lo0 aliases as expected"
fi

echo "packaging checks passed"
