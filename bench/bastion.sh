#!/usr/bin/env bash
# Benchmark: 50 cloud-like lab hosts (an `admin` user with sudo, no root
# login), all but the two balancers behind one bastion. Converges them,
# then runs ten no-op plans and applies, each of which must pass and open
# exactly one connection to the bastion, and prints the no-op plan and
# apply against the floor through the same bastion (one connection to it,
# then a fresh `ssh true` to every host over it, in parallel).
# Needs root and the lab's tools; takes a few minutes.
#
#   bash bench/bastion.sh     (INFRA_BENCH_RELEASE=bookworm: on Debian 12 hosts)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --quiet --test lab bench_plan_through_a_bastion -- --ignored --nocapture 2>&1 | grep -E '^BENCH|SKIPPED|panicked|FAILED'
