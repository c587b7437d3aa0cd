#!/usr/bin/env bash
# Benchmark: `infra validate --no-checkers` on a generated 1,000-host inventory.
# Goal (issue 2): under 100 ms. Prints each run, the median, and the ratio of
# the median to the 100 ms budget (below 1.0 is within budget).
#
#   bash bench/validate-1000.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
hosts=1000

cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
inventory="$work/inventory.yml"

# 2 load balancers, 1 database, the rest split between web and app.
{
  echo "hosts:"
  echo "  - {name: lb-01, address: 10.40.0.11, roles: [load_balancer], vrrp: {priority: 150}}"
  echo "  - {name: lb-02, address: 10.40.0.12, roles: [load_balancer], vrrp: {priority: 100}}"
  echo "  - {name: db-01, address: 10.40.0.13, roles: [database]}"
  for ((i = 0; i < hosts - 3; i++)); do
    role=$([ $((i % 2)) -eq 0 ] && echo web || echo app)
    echo "  - {name: $role-$i, address: 10.41.$((i / 250)).$((i % 250 + 1)), roles: [$role]}"
  done
  cat <<YAML
load_balancer:
  virtual_ip: 10.40.0.10/24
  virtual_router_id: 51
  vrrp_secret: {env: INFRA_VRRP_SECRET}
web:
  static_source: $PWD/examples/static
app:
  module: "app:app"
  source: $PWD/examples/app
database:
  name: app
  user: app
  password: {env: INFRA_DB_PASSWORD}
YAML
} > "$inventory"

./target/release/infra validate --no-checkers -i "$inventory" 2>/dev/null || {
  echo "the generated inventory does not validate:" >&2
  ./target/release/infra validate --no-checkers -i "$inventory" >&2
  exit 1
}

timings=()
for ((run = 0; run < runs; run++)); do
  start=$(date +%s%N)
  ./target/release/infra validate --no-checkers -i "$inventory" 2>/dev/null
  end=$(date +%s%N)
  timings+=($(((end - start) / 1000)))
done
sorted=($(printf '%s\n' "${timings[@]}" | sort -n))
median=${sorted[$((runs / 2))]}
echo "validate --no-checkers, $hosts hosts, $runs runs"
echo "  min    $(awk "BEGIN {printf \"%.1f\", ${sorted[0]} / 1000}") ms"
echo "  median $(awk "BEGIN {printf \"%.1f\", $median / 1000}") ms"
echo "  max    $(awk "BEGIN {printf \"%.1f\", ${sorted[$((runs - 1))]} / 1000}") ms"
echo "  median / 100 ms budget = $(awk "BEGIN {printf \"%.2f\", $median / 100000}")"
