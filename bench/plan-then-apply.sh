#!/usr/bin/env bash
# Benchmark: `infra plan` then `infra apply` of a change on five lab hosts,
# the apply resuming the plan's warm SSH masters, against the same pair with
# the masters off (INFRA_SSH_PERSIST=0), interleaved in one run, 7 rounds.
# Needs root and the lab's tools; takes about three minutes. Prints medians
# and ratios (issue 28, item 3).
#
#   bash bench/plan-then-apply.sh   (INFRA_BENCH_RELEASE=bookworm: on Debian 12 hosts)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --quiet --test lab bench_apply_after_plan_against_fresh_runs -- --ignored --nocapture 2>&1 | grep -E '^BENCH|SKIPPED|panicked|FAILED'
