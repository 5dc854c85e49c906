#!/bin/sh
# The whole test suite and the demo on a real FreeBSD host, as root.
#
# The tests put daemons on 127.0.0.1 to 127.0.0.5; FreeBSD has only
# 127.0.0.1 on lo0, so this adds the others as lo0 aliases for the run and
# removes the ones it added on exit (a test run without them fails at once,
# naming the missing address). Then it runs `cargo test` (capsicum is
# exercised by tests/sandbox.rs), the demo, and prints a report to paste
# into the issue, also kept in the file named at the end.
#
# Needs: FreeBSD 13 or later, root, Rust (pkg install rust, or rustup).
set -u
cd "$(dirname "$0")/../.." || exit 2

if [ "$(uname -s)" != FreeBSD ]; then
	echo "on-host.sh runs on FreeBSD; elsewhere use tests/freebsd/cross-check.sh" >&2
	exit 2
fi
if [ "$(id -u)" != 0 ]; then
	echo "run as root: the tests run daemons as root and add lo0 aliases" >&2
	exit 2
fi

aliases="127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5"
added=""
work=$(mktemp -d "${TMPDIR:-/tmp}/hastmon-on-host.XXXXXX")
cleanup() {
	for ip in $added; do
		ifconfig lo0 inet "$ip" -alias 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for ip in $aliases; do
	if ! ifconfig lo0 | grep -q "inet $ip "; then
		ifconfig lo0 inet "$ip/32" alias || {
			echo "unable to add $ip to lo0" >&2
			exit 1
		}
		added="$added $ip"
	fi
done

echo "== cargo test (log: $work/test.log)"
cargo test 2>&1 | tee "$work/test.log"
test_rc=$?
# tee hides cargo's status in a plain sh pipeline: read it from the log.
if grep -q '^test result: FAILED\|^error' "$work/test.log"; then
	test_rc=1
fi

echo "== demo (log: $work/demo.log)"
demo/cluster.sh >"$work/demo.log" 2>&1
demo_rc=$?

summary() {
	awk '/^test result:/ { p += $4; f += $6; i += $8 }
		END { printf "%d passed, %d failed, %d ignored\n", p, f, i }' "$work/test.log"
}

{
	echo "### hastmon on FreeBSD: on-host.sh report"
	echo '```'
	echo "commit:      $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "system:      $(uname -srm) ($(freebsd-version -ku 2>/dev/null | tr '\n' ' '))"
	echo "rust:        $(rustc --version) / $(cargo --version)"
	echo "lo0 aliases: added:${added:- none} (all of $aliases present)"
	echo "ip6 v6only:  $(sysctl -n net.inet6.ip6.v6only 2>/dev/null || echo n/a)"
	echo "securelevel: $(sysctl -n kern.securelevel)"
	echo "capsicum:    $(sysctl -n kern.features.security_capability_mode 2>/dev/null || echo 0)"
	echo "user:        $(id hastmon 2>/dev/null || echo 'no hastmon user (tests use nobody)')"
	echo "tests:       exit $test_rc; $(summary)"
	grep -E '^test .* FAILED$|^---- .* stdout ----$|panicked at' "$work/test.log" | head -40
	echo "demo:        exit $demo_rc"
	tail -n 15 "$work/demo.log"
	echo '```'
} | tee "$work/report.md"

echo "report kept in $work/report.md"
[ "$test_rc" = 0 ] && [ "$demo_rc" = 0 ]
