#!/bin/sh
# The local three-node demo cluster on loopback, showing a failover.
set -eu
cd "$(dirname "$0")/.."
cargo build --quiet --release
echo "hastmon $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1): configuration of the demo, as node A resolves it:"
./target/release/hastmonctl dump -n nodeA -c tests/configs/three-node.conf
echo
echo "The daemon is not built yet (see the open issues); the failover demo comes with it."
