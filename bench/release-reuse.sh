#!/usr/bin/env bash
# Benchmark: `infra deploy` of a release with PyPI packages (wheels fetched with a
# cold cache on this machine, installed offline on the lab host) against
# the next, code-only release, whose packages are hard-linked from the
# first; both measured in one run on a five-host lab. Prints both times and
# the ratio. Needs root, the lab's tools and pip on this machine.
#
#   bash bench/release-reuse.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --quiet --test lab bench_code_only_release_against_the_first -- --ignored --nocapture 2>&1 | grep -E '^BENCH|SKIPPED|panicked|FAILED'
