#!/usr/bin/env bash
# Benchmark: a no-op `infra plan` and a no-op `infra apply` (goals 1.1x
# and 1.2x) against the physical floor, a
# fresh SSH connection to every host in parallel running `true`, both
# measured in the same run on lab hosts, for 5 and for 50 hosts.
# Needs root and the lab's tools; takes a few minutes (it converges the
# hosts first, and prints how long that took). Prints the ratios per size.
#
#   bash bench/plan-vs-ssh.sh     (INFRA_BENCH_RELEASE=bookworm: on Debian 12 hosts)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --quiet --test lab bench_plan_against_the_ssh_floor -- --ignored --nocapture 2>&1 | grep -E '^BENCH|SKIPPED|panicked|FAILED'
