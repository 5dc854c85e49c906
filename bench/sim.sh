#!/bin/sh
# A long run of the deterministic simulation: every node the product's
# own node and role machines, faults drawn from each seed. Prints the
# same line as `cargo test --test sim`:
#   sim: N runs, N violations, max overlap X s (bound Y s), max takeover X s (bound Y s)
# Usage: bench/sim.sh [RUNS]   (default 1000000)
set -eu
cd "$(dirname "$0")/.."
runs=${1:-1000000}
SIM_RUNS=$runs cargo test --locked --test sim clusters_survive_faults 2>&1 |
	grep -E '^sim:|^seed|failed|panicked' || true
