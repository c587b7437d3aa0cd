#!/usr/bin/env bash
# Benchmark (issue 4): a no-op `infra plan` against the physical floor, a
# fresh SSH connection to every host in parallel running `true`, both
# measured in the same run on lab hosts, for 5 and for 50 hosts.
# Needs root and the lab's tools; takes a few minutes (it converges the
# hosts first). Prints one line per size with the ratio (goal <= 1.5).
#
#   bash bench/plan-vs-ssh.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --quiet --test lab bench_plan_against_the_ssh_floor -- --ignored --nocapture 2>&1 | grep -E '^BENCH|SKIPPED|panicked|FAILED'
