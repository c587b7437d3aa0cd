# The facts script's functions, sent before the lines that call them
# (src/facts/mod.rs writes those): `file INDEX PATH SHA256 SEND`,
# `packages NAME...`, `services UNIT...`. MAX_DIFF_BYTES is replaced with
# the largest file whose content is sent for a diff.
set -u
export LC_ALL=C
# Facts read as another user than root would be wrong (private files look
# unreadable), and what follows them could not be applied.
require_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "infra runs as root on every host, and \`$(id -un)\` is not root: log in as root, or set \`ssh.become: sudo\` for a user with passwordless sudo" >&2
    exit 1
  fi
}
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
# `T PORT UNIT PROCESS` for each listener on one of the given TCP ports:
# what else may already hold a port infra's services need.
listeners() {
  ss -Hltnp 2>/dev/null | while read -r _ _ _ local _ users; do
    port=${local##*:}
    for wanted in "$@"; do
      [ "$port" = "$wanted" ] || continue
      pid=$(echo "$users" | sed -n 's/.*pid=\([0-9]*\).*/\1/p')
      unit=$(sed -n 's#^0::.*/\([^/]*\)$#\1#p' "/proc/$pid/cgroup" 2>/dev/null)
      comm=$(tr ' ' _ < "/proc/$pid/comm" 2>/dev/null)
      echo "T $port ${unit:--} ${comm:--}"
    done
  done
}
# `Z PROCESS` when a process holds dpkg's lock: apt takes it with fcntl,
# which /proc/locks lists by inode.
dpkg_lock() {
  inode=$(stat -c %i /var/lib/dpkg/lock-frontend 2>/dev/null) || return 0
  pid=$(awk -v inode=":$inode" '$6 ~ inode"$" { print $5; exit }' /proc/locks 2>/dev/null)
  [ -n "$pid" ] || return 0
  echo "Z $(tr ' ' _ < "/proc/$pid/comm" 2>/dev/null || echo "pid_$pid")"
}
# `I NAME...`: the host's network interfaces, from `ip` rather than
# /sys/class/net, which in a container may be the machine's.
interfaces() {
  command -v ip >/dev/null || return 0
  names=$(ip -o link show | sed 's/^[0-9]*: \([^:@]*\).*/\1/' | tr '\n' ' ')
  echo "I ${names% }"
}
