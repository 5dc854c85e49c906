#!/usr/bin/env bash
# FreeBSD cross checks, runnable by anyone on a Linux machine with rustup:
# type-check and lint every target for x86_64-unknown-freebsd, then link
# real FreeBSD binaries with cargo-zigbuild and check what they are.
set -euo pipefail
cd "$(dirname "$0")/../.."

target=x86_64-unknown-freebsd
venv=${HASTMON_ZIG_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hastmon-zigbuild}

if rustup target add "$target" >/dev/null 2>&1; then
	echo "== cargo check --target $target"
	cargo check --quiet --all-targets --target "$target"
	echo "== cargo clippy --target $target"
	cargo clippy --quiet --all-targets --target "$target" -- -D warnings
else
	# No prebuilt std for the target: build it from Debian's sources.
	echo "== rustup target add refused; using Debian's rustc with -Zbuild-std"
	apt-get install -y -qq rustc-web rust-web-src rust-web-clippy >/dev/null
	export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
	/usr/bin/cargo check --quiet -Zbuild-std=std,panic_abort --target "$target"
	PATH=/usr/bin:/bin CARGO=/usr/bin/cargo /usr/bin/cargo-clippy clippy --quiet \
		-Zbuild-std=std,panic_abort --target "$target" -- -D warnings
	exit 0
fi

echo "== linking FreeBSD binaries (cargo zigbuild)"
if [ ! -x "$venv/bin/cargo-zigbuild" ]; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install --quiet ziglang==0.17.0 cargo-zigbuild==0.24.0
fi
PATH="$venv/bin:$PATH" cargo zigbuild --quiet --release --target "$target"

for bin in hastmon hastmonctl; do
	f="target/$target/release/$bin"
	desc=$(file -b "$f")
	case "$desc" in
	"ELF 64-bit"*"for FreeBSD"*) ;;
	*)
		echo "$f is not a FreeBSD executable: $desc" >&2
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
	printf '%-12s %8d bytes  %s\n' "$bin" "$(stat -c %s "$f")" "$desc"
done
