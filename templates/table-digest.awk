# Reads a mariadb-dump stream and passes it through unchanged, while it
# counts each table's rows and feeds that table's INSERT lines to
# `sha256sum > DIR/N` (N: the table's number, never its name, so no table
# name reaches a shell). At the end it writes DIR/tables: number, rows and
# the JSON-escaped name, tab-separated. The same program digests the
# backup as it is taken and the drill's copy after its restore.
function table_name(line,    name) {
  name = line
  sub(/^[^`]*`/, "", name)
  sub(/`.*$/, "", name)
  gsub(/\\/, "\\\\", name)
  gsub(/"/, "\\\"", name)
  return name
}
function table_number(name) {
  if (!(name in number)) { number[name] = ++tables; rows[tables] = 0; names[tables] = name }
  return number[name]
}
/^CREATE TABLE `/ { table_number(table_name($0)) }
# An INSERT runs from its `INSERT INTO` line to the line ending in `;`,
# one row or many per line (versions differ). Strings cannot span lines:
# the dump escapes newlines. Strip the escapes, then the strings; each `(`
# left opens a row.
/^INSERT INTO `/ { inserting = table_number(table_name($0)) }
inserting {
  # mariadb-dump writes one table after the other: one digest open at a time.
  if (inserting != open_table) { if (open_table) close("sha256sum > " dir "/" open_table); open_table = inserting }
  values = $0
  sub(/^INSERT INTO `[^`]*` VALUES ?/, "", values)
  gsub(/\\./, "", values)
  gsub(/'[^']*'/, "", values)
  rows[inserting] += gsub(/\(/, "", values)
  print $0 | ("sha256sum > " dir "/" inserting)
  if ($0 ~ /;$/) inserting = 0
}
{ print }
END {
  if (open_table) close("sha256sum > " dir "/" open_table)
  for (n = 1; n <= tables; n++) {
    printf "%d\t%d\t%s\n", n, rows[n], names[n] > (dir "/tables")
  }
}
