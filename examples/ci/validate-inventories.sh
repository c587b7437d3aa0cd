#!/usr/bin/env bash
# Validates every inventory given (default: inventories/*.yml) offline, the
# way CI should on every inventory change: `infra validate --format json`
# per inventory, the JSON kept as an artifact, the human summary on stderr.
# Exits 1 if any inventory is invalid. Needs no SSH and no secrets (missing
# secrets are validated with placeholders). Set INFRA to the binary to use.
set -euo pipefail

infra=${INFRA:-infra}
reports=${REPORTS:-validate-reports}
mkdir -p "$reports"
[ "$#" -gt 0 ] || set -- inventories/*.yml

failed=0
for inventory in "$@"; do
  report="$reports/$(basename "$inventory" .yml).json"
  if "$infra" validate --format json --strict -i "$inventory" > "$report"; then
    echo "valid: $inventory" >&2
  else
    echo "INVALID: $inventory (details in $report)" >&2
    failed=1
  fi
done
exit "$failed"
