#!/usr/bin/env bash
# Benchmark (issue 13): `infra validate --no-checkers` on generated
# inventories of 1,000, 5,000 and 20,000 hosts with the tier firewall on.
# Goal: linear growth; 1,000 hosts under 100 ms; 20,000 under 3 s and 1 GiB. Prints, per size,
# the median wall time and peak memory of RUNS runs, the time per host
# relative to the 1,000-host run (1.0 is perfectly linear), and the 20,000-host
# figures against their budgets (below 1.0 is within budget). Ratios are
# measured in this one run, so a noisy machine shifts them all alike.
#
#   bash bench/validate-scale.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}

cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The generated inventories live in $work and name this checkout's
# examples: allowed as an operator would allow them.
export INFRA_ALLOW_PATHS="$PWD/examples"

# 2 load balancers, 1 database, the rest split between web and app.
generate() {
  local hosts=$1
  echo "hosts:"
  echo "  - {name: lb-01, address: 10.40.0.11, roles: [load_balancer], vrrp: {priority: 150}}"
  echo "  - {name: lb-02, address: 10.40.0.12, roles: [load_balancer], vrrp: {priority: 100}}"
  echo "  - {name: db-01, address: 10.40.0.13, roles: [database]}"
  awk -v n=$((hosts - 3)) 'BEGIN { for (i = 0; i < n; i++) {
    role = (i % 2 == 0) ? "web" : "app"
    printf "  - {name: %s-%d, address: 10.%d.%d.%d, roles: [%s]}\n", role, i, 41 + int(i / 62500), int(i / 250) % 250, i % 250 + 1, role } }'
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
firewall:
  admin_cidrs: [10.40.0.250/32]
YAML
}

# Wall seconds and peak RSS in MiB of one run, from the kernel's rusage.
measure() {
  python3 - "$@" <<'PY'
import os, resource, subprocess, sys, time
start = time.monotonic()
result = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
elapsed = time.monotonic() - start
if result.returncode != 0:
    sys.exit("the generated inventory does not validate:\n" + result.stderr.decode())
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{elapsed:.3f} {peak:.1f}")
PY
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "validate --no-checkers with the tier firewall, median of $runs runs"
printf '%8s %10s %12s %22s\n' hosts seconds "peak MiB" "time/host vs 1,000"
base_per_host=""
for hosts in 1000 5000 20000; do
  generate "$hosts" > "$work/inventory-$hosts.yml"
  times=() peaks=()
  for ((run = 0; run < runs; run++)); do
    read -r seconds peak < <(measure ./target/release/infra validate --no-checkers -i "$work/inventory-$hosts.yml")
    times+=("$seconds") peaks+=("$peak")
  done
  seconds=$(printf '%s\n' "${times[@]}" | median)
  peak=$(printf '%s\n' "${peaks[@]}" | median)
  per_host=$(awk "BEGIN { print $seconds / $hosts }")
  if [ -z "$base_per_host" ]; then base_per_host=$per_host; base_seconds=$seconds; fi
  printf '%8d %10.3f %12.1f %22.2f\n' "$hosts" "$seconds" "$peak" "$(awk "BEGIN { print $per_host / $base_per_host }")"
done
echo "1,000 hosts: time / 100 ms budget = $(awk "BEGIN { printf \"%.2f\", $base_seconds / 0.1 }")"
echo "20,000 hosts: time / 3 s budget = $(awk "BEGIN { printf \"%.2f\", $seconds / 3 }"), peak memory / 1 GiB budget = $(awk "BEGIN { printf \"%.2f\", $peak / 1024 }")"
