#!/usr/bin/env bash
# FreeBSD cross checks, runnable by anyone on a Linux machine with rustup:
# for x86_64 and i686 FreeBSD, type-check and lint every target (tests
# included), then link real FreeBSD binaries, the test binaries too, with
# cargo-zigbuild and check what they are.
#
# x86_64 uses the stable toolchain's prebuilt std. i686-unknown-freebsd has
# none (rustup answers 404), so it is built with the nightly toolchain and
# -Zbuild-std from its rust-src. i686 matters: its 32-bit `uintptr_t` and
# `long` catch what 64-bit builds let through (kqueue idents, timespecs).
#
# HASTMON_CROSS_TARGETS restricts the run ("x86_64-unknown-freebsd", ...).
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=${HASTMON_ZIG_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hastmon-zigbuild}
targets=${HASTMON_CROSS_TARGETS:-x86_64-unknown-freebsd i686-unknown-freebsd}

if [ ! -x "$venv/bin/cargo-zigbuild" ]; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install --quiet ziglang==0.17.0 cargo-zigbuild==0.24.0
fi

# Checks one linked binary: a FreeBSD executable of the right width, run
# by FreeBSD's run-time linker.
check_elf() {
	local f=$1 bits=$2 desc
	desc=$(file -b "$f")
	case "$desc" in
	"ELF $bits-bit"*"for FreeBSD"*) ;;
	*)
		echo "$f is not a $bits-bit FreeBSD executable: $desc" >&2
		exit 1
		;;
	esac
	case "$desc" in
	*"interpreter /libexec/ld-elf.so.1"*) ;;
	*)
		echo "$f does not use FreeBSD's run-time linker: $desc" >&2
		exit 1
		;;
	esac
	printf '%-42s %9d bytes  %s\n' "${f#target/}" "$(stat -c %s "$f")" "${desc%%,*}"
}

for target in $targets; do
	case "$target" in
	x86_64-*)
		bits=64
		toolchain=()
		buildstd=()
		rustup target add "$target" >/dev/null
		;;
	i686-*)
		bits=32
		toolchain=(+nightly)
		buildstd=("-Zbuild-std=std,panic_abort")
		rustup toolchain install nightly --profile minimal \
			--component rust-src,clippy >/dev/null 2>&1 ||
			rustup component add rust-src clippy --toolchain nightly >/dev/null
		;;
	*)
		echo "unknown target $target" >&2
		exit 2
		;;
	esac
	echo "== cargo check --target $target"
	cargo "${toolchain[@]}" check --quiet "${buildstd[@]}" --all-targets --target "$target"
	echo "== cargo clippy --target $target"
	cargo "${toolchain[@]}" clippy --quiet "${buildstd[@]}" --all-targets --target "$target" \
		-- -D warnings
	echo "== linking FreeBSD binaries and test binaries for $target (cargo zigbuild)"
	PATH="$venv/bin:$PATH" cargo "${toolchain[@]}" zigbuild --quiet "${buildstd[@]}" \
		--release --target "$target"
	for bin in hastmon hastmonctl; do
		check_elf "target/$target/release/$bin" "$bits"
	done
	# The test binaries as `cargo test` on a FreeBSD host builds them; their
	# names are what cargo prints as JSON.
	tests=$(PATH="$venv/bin:$PATH" cargo "${toolchain[@]}" zigbuild --quiet "${buildstd[@]}" \
		--tests --target "$target" --message-format=json |
		python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        print(m["executable"])')
	n=0
	for t in $tests; do
		check_elf "${t#"$PWD"/}" "$bits" >/dev/null
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || {
		echo "no test binary was linked for $target" >&2
		exit 1
	}
	echo "$n test binaries linked for $target, each a $bits-bit FreeBSD executable"
done
