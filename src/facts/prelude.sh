# The facts script's functions, sent before the lines that call them
# (src/facts/mod.rs writes those): `file INDEX PATH SHA256 SEND`,
# `packages NAME...`, `services UNIT...`. MAX_DIFF_BYTES is replaced with
# the largest file whose content is sent for a diff.
set -u
export LC_ALL=C
# Facts read as another user than root would be wrong (private files look
# unreadable), and what follows them could not be applied.
if [ "$(id -u)" != 0 ]; then
  echo "infra runs as root on every host, and \`$(id -un)\` is not root: log in as root, or set \`ssh.become: sudo\` for a user with passwordless sudo" >&2
  exit 1
fi
file() {
  if [ -L "$2" ] || { [ -e "$2" ] && [ ! -f "$2" ]; }; then
    echo "N $1 $(stat -c %F "$2" | tr ' ' _)"
  elif [ -f "$2" ]; then
    sum=$(sha256sum < "$2")
    sum=${sum%% *}
    meta=$(stat -c '%a %U %G %s' "$2")
    echo "F $1 $sum ${meta% *}"
    if [ "$4" = 1 ] && [ "$sum" != "$3" ] && [ "${meta##* }" -le MAX_DIFF_BYTES ]; then
      echo "C $1 $(base64 -w0 < "$2")"
    fi
  else
    echo "A $1"
  fi
}
packages() {
  installed=$(dpkg-query -W -f '${Package} ${db:Status-Abbrev}|${Version}\n' -- "$@" 2>/dev/null)
  i=0
  for name in "$@"; do
    version=-
    while read -r package status; do
      case "$package $status" in "$name ii"*) version=${status#*|} ;; esac
    done <<LIST
$installed
LIST
    echo "P $i $version"
    i=$((i + 1))
  done
}
services() {
  systemctl show --property=LoadState,ActiveState,UnitFileState -- "$@" 2>/dev/null | {
    i=0 load='' active='' enabled=''
    state() {
      [ "$load" = not-found ] && enabled=not-found
      echo "S $i ${active:-unknown} ${enabled:-not-found}"
      i=$((i + 1)) load='' active='' enabled=''
    }
    while IFS='=' read -r key value; do
      case "$key" in
        LoadState) load=$value ;;
        ActiveState) active=$value ;;
        UnitFileState) enabled=$value ;;
        '') state ;;
      esac
    done
    [ -n "$load$active" ] && state
    # Without a running systemd there is no answer: nothing is active.
    while [ "$i" -lt "$#" ]; do state; done
  }
}
