# A restore drill on a scratch host (sent by `infra backup verify`; the
# lines above set `dir`, the directory holding backup.sql.gz, `database`
# and `digest_awk`). It starts a MariaDB server of its own in `dir` (own
# data directory and socket, no network), loads the backup, digests every
# table exactly as the backup script did, stops the server and removes
# `dir`, whatever happened. It prints `server VERSION`, `seconds S.mmm`
# and one `table ROWS SHA256 NAME` line per table, tab-separated.
set -eu
fail() { echo "drill: $*" >&2; exit 1; }
cleanup() {
  if [ -S "$dir/socket" ]; then mariadb-admin --no-defaults --socket="$dir/socket" shutdown 2>/dev/null || true; fi
  if [ -e "$dir/pid" ]; then kill "$(cat "$dir/pid")" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
for program in mariadbd mariadb-install-db mariadb mariadb-dump mariadb-admin; do
  command -v "$program" >/dev/null || fail "this host has no \`$program\`: install mariadb-server to drill restores on it"
done
id mysql >/dev/null 2>&1 || fail "this host has no \`mysql\` user: install mariadb-server to drill restores on it"
mkdir "$dir/data" "$dir/digest"
chown mysql: "$dir" "$dir/data"
mariadb-install-db --no-defaults --user=mysql --datadir="$dir/data" --auth-root-authentication-method=socket \
  --skip-test-db > "$dir/install.log" 2>&1 || { tail -n 5 "$dir/install.log" >&2; fail "mariadb-install-db failed"; }
mariadbd --no-defaults --user=mysql --datadir="$dir/data" --socket="$dir/socket" --skip-networking \
  --pid-file="$dir/pid" --log-error="$dir/error.log" &
for _ in $(seq 1 120); do
  mariadb-admin --no-defaults --socket="$dir/socket" ping >/dev/null 2>&1 && break
  sleep 0.25
done
mariadb-admin --no-defaults --socket="$dir/socket" ping >/dev/null 2>&1 \
  || { tail -n 5 "$dir/error.log" >&2; fail "the scratch server did not start"; }
started=$(date +%s%N)
gunzip -c "$dir/backup.sql.gz" | mariadb --no-defaults --sandbox --socket="$dir/socket" \
  || fail "the backup did not load into the scratch server"
elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
mariadb-dump --no-defaults --socket="$dir/socket" --single-transaction --quick --hex-blob --order-by-primary \
  --skip-dump-date --routines --events --triggers --databases "$database" \
  | LC_ALL=C awk -v dir="$dir/digest" "$digest_awk" > /dev/null
printf 'server\t%s\n' "$(mariadb --no-defaults --socket="$dir/socket" -N -B -e 'SELECT VERSION()')"
printf 'seconds\t%d.%03d\n' $((elapsed / 1000)) $((elapsed % 1000))
if [ -e "$dir/digest/tables" ]; then
  while IFS="$(printf '\t')" read -r number rows name; do
    sum=$(cat "$dir/digest/$number" 2>/dev/null || printf '' | sha256sum)
    printf 'table\t%s\t%s\t%s\n' "$rows" "${sum%% *}" "$name"
  done < "$dir/digest/tables"
fi
