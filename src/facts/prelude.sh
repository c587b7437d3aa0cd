# The facts script's functions, sent before the lines that call them
# (src/facts/mod.rs writes those): `files_unchanged DIGEST PATH...`,
# `file INDEX PATH SHA256 SEND`, `packages NAME...`, `services UNIT...`,
# and the rest below. MAX_DIFF_BYTES is replaced with the largest file
# whose content is sent for a diff.
#
# Every process started here costs a host milliseconds (and a lab of many
# hosts on a few cores far more), so what the shell can read by itself is
# read with builtins; each program left runs once for all items.
set -u
export LC_ALL=C
# Facts read as another user than root would be wrong (private files look
# unreadable), and what follows them could not be applied.
require_root() {
  euid=
  if [ -r /proc/self/status ]; then
    while read -r key _ effective _; do
      [ "$key" = Uid: ] && euid=$effective && break
    done < /proc/self/status
  else
    euid=$(id -u)
  fi
  if [ "$euid" != 0 ]; then
    echo "infra runs as root on every host, and \`$(id -un)\` is not root: log in as root, or set \`ssh.become: sudo\` for a user with passwordless sudo" >&2
    exit 1
  fi
}
# Whether every managed file is exactly as desired: type, mode, owner,
# group, size and content of all of them in one digest, from one stat, one
# cat and one sha256sum, against the digest infra computed from what it
# would write. Sizes delimit the contents, so no two trees share a digest.
# When it differs, each file is read on its own (`file`), for the diff.
files_unchanged() {
  expected=$1
  shift
  [ "$({ stat -c '%F %a %U %G %s' -- "$@" && cat -- "$@"; } 2>/dev/null | sha256sum)" = "$expected  -" ]
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
# The command name of process $1, spaces as `_`, in `$name`; $2 when the
# process is gone.
process_name() {
  name=
  { IFS= read -r name < "/proc/$1/comm"; } 2>/dev/null
  case $name in *' '*) name=$(printf '%s' "$name" | tr ' ' _) ;; esac
  [ -n "$name" ] || name=$2
}
# `T PORT UNIT PROCESS` for each listener on one of the given TCP ports:
# what else may already hold a port infra's services need.
listeners() {
  ss -Hltnp 2>/dev/null | while read -r _ _ _ local _ users; do
    port=${local##*:}
    for wanted in "$@"; do
      [ "$port" = "$wanted" ] && listener "$port" "$users"
    done
  done
}
# One listener: ss's `users:(("name",pid=N,fd=M),...)` names the process,
# its cgroup the unit. A socket systemd holds for a service lists systemd
# (pid 1) too: the service's process is the one that says whose it is.
listener() {
  users=$2 pid=
  while :; do
    case $users in *pid=*) ;; *) break ;; esac
    users=${users#*pid=}
    pid=${users%%[!0-9]*}
    [ "$pid" = 1 ] || break
  done
  unit=- name=-
  if [ -n "$pid" ]; then
    { while IFS= read -r line; do
        case $line in 0::*/*) unit=${line##*/} ;; esac
      done < "/proc/$pid/cgroup"; } 2>/dev/null
    [ -n "$unit" ] || unit=-
    process_name "$pid" -
  fi
  printf 'T %s %s %s\n' "$1" "$unit" "$name"
}
# `Z PROCESS` when a process holds dpkg's lock: apt takes it with fcntl,
# which /proc/locks lists by inode and pid. Open file description locks
# (pid -1, systemd's own) are not apt's; without a process lock no program
# runs.
dpkg_lock() {
  [ -e /var/lib/dpkg/lock-frontend ] && [ -r /proc/locks ] || return 0
  locks=
  while read -r _ kind _ _ pid file _; do
    case $kind:$pid in '->:'* | *:-* | *:) continue ;; esac
    locks="$locks $pid:${file##*:}"
  done < /proc/locks
  [ -n "$locks" ] || return 0
  inode=$(stat -c %i /var/lib/dpkg/lock-frontend 2>/dev/null) || return 0
  for lock in $locks; do
    [ "${lock#*:}" = "$inode" ] || continue
    process_name "${lock%%:*}" "pid_${lock%%:*}"
    echo "Z $name"
    return 0
  done
}
# `I NAME...`: the host's network interfaces, from `ip` rather than
# /sys/class/net, which in a container may be the machine's.
interfaces() {
  command -v ip >/dev/null || return 0
  ip -o link show | {
    names=
    while read -r _ name _; do
      name=${name%:}
      names="$names ${name%%@*}"
    done
    echo "I$names"
  }
}
# `O ID CODENAME` from os-release, read (never sourced): each value up to
# its first quote or space, `unknown` when there is none.
os_release() {
  id='' codename=''
  if [ -r /etc/os-release ]; then
    while IFS='=' read -r key value; do
      value=${value#[\"\']}
      value=${value%%[\"\' ]*}
      case $key in
        ID) [ -n "$id" ] || id=$value ;;
        VERSION_CODENAME) [ -n "$codename" ] || codename=$value ;;
      esac
    done < /etc/os-release
  fi
  printf 'O %s %s\n' "${id:-unknown}" "${codename:-unknown}"
}
# `R ID MTIME VENV MIGRATED HEALTHY SERVER` and `M ID RECORD` for each complete
# release in $1 (see release_facts in mod.rs), with one stat for all. The
# time is the complete mark's, written once when the release was unpacked:
# the directory's own changes whenever anything runs inside it.
# W ID for each release whose static files are published under $1 (a
# directory named by its id is whole: it was renamed into place).
static_releases() {
  for d in "$1"/*/; do
    d=${d%/}
    id=${d##*/}
    case $id in *[!0-9a-f]*) continue ;; esac
    [ ${#id} -eq 12 ] && [ -d "$d" ] && [ ! -L "$d" ] && echo "W $id"
  done
  return 0
}

releases() {
  complete=''
  for d in "$1"/*/; do
    d=${d%/}
    id=${d##*/}
    case $id in *[!0-9a-f]*) continue ;; esac
    [ ${#id} -eq 12 ] && [ -e "$d/$2" ] && complete="$complete $d/$2"
  done
  [ -n "$complete" ] || return 0
  # shellcheck disable=SC2086 # release paths: the directory and hex ids
  stat -c '%Y %n' -- $complete | while read -r mtime mark; do
    d=${mark%/*}
    id=${d##*/}
    venv=-
    [ -r "$d/$3" ] && { IFS= read -r venv < "$d/$3" || :; }
    migrated=- healthy=-
    [ -e "$d/$4" ] && migrated=migrated
    [ -e "$d/$5" ] && healthy=healthy
    # The Gunicorn the release serves with: its `.venv`'s, by the version
    # in its metadata's name (a glob, no program), else Debian's.
    server=system
    if [ -d "$d/.venv" ]; then
      server=-
      for info in "$d"/.venv/lib/python3*/site-packages/gunicorn-*.dist-info; do
        [ -d "$info" ] && { server=${info##*/gunicorn-}; server=${server%.dist-info}; }
      done
    fi
    printf 'R %s %s %s %s %s %s\n' "$id" "$mtime" "${venv:--}" "$migrated" "$healthy" "$server"
    [ -s "$d/$6" ] && release_record "M $id" "$d/$6"
  done
}
# `X UNIT` for each instance of an app process enabled at boot (its link
# in multi-user.target.wants): what an apply that no longer wants it must
# stop. A glob, no program.
app_processes() {
  for unit in /etc/systemd/system/multi-user.target.wants/infra-app-*@*.service; do
    [ -L "$unit" ] && echo "X ${unit##*/}"
  done
  return 0
}
# `G ID` for each release the fleet's migration ledger $1 names, and `H
# CHOICE` with the release choice $2 (about 4 KiB at most), when there is one.
release_ledgers() {
  if [ -r "$1" ]; then
    while read -r id _; do
      case $id in *[!0-9a-f]*) ;; ????????????) echo "G $id" ;; esac
    done < "$1"
  fi
  [ -s "$2" ] && release_record H "$2"
  return 0
}
# `$1 RECORD`: the lines of the record $2 joined, read up to about 4 KiB.
release_record() {
  record=''
  while IFS= read -r line || [ -n "$line" ]; do
    record=$record$line
    [ ${#record} -le 4096 ] || break
  done < "$2"
  printf '%s %s\n' "$1" "$record"
}
# `Y VERSION ARCH`: the host's Python and machine, what wheels must fit.
python_facts() {
  p=$(readlink -f /usr/bin/python3 2>/dev/null)
  arch=''
  [ -r /proc/sys/kernel/arch ] && read -r arch < /proc/sys/kernel/arch
  [ -n "$arch" ] || arch=$(uname -m)
  echo "Y ${p##*/python} $arch"
}
# `B NEWEST_BACKUP NEWEST_PASSED_DRILL`, `-` for none: the newest complete
# manifest's id (ids sort as times) and the latest `at` of a passed drill.
backups() {
  newest=-
  for m in "$1"/*.json; do
    [ -e "$m" ] && [ -e "${m%.json}.sql.gz" ] && newest=${m##*/}
  done
  drill=- latest=0
  for f in "$1"/*.drill; do
    [ -f "$f" ] || continue
    while IFS= read -r line || [ -n "$line" ]; do
      case $line in *'"passed":true'*) ;; *) continue ;; esac
      at=${line##*\"at\":\"}
      at=${at%%\"*}
      case $at in [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z) ;; *) continue ;; esac
      moment=${at%Z}
      moment=${moment%T*}${moment#*T}
      [ "$moment" -gt "$latest" ] && latest=$moment drill=$at
    done < "$f"
  done
  echo "B ${newest%.json} $drill"
}
