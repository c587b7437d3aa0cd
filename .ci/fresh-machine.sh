#!/usr/bin/env bash
# The README's main command, copied literally, on a fresh Debian machine with
# nothing but the Rust toolchain: a minbase debootstrap of RELEASE (default
# trixie) used as the machine's whole userland, in its own mount namespace
# (the kernel, network and cgroups are this machine's, as the lab needs).
# Nothing of this machine's installed packages is visible inside: `lab up`
# must install its own prerequisites. The toolchain is this machine's
# rustup (bind-mounted) plus the C linker it needs (gcc, libc6-dev).
#
#   sudo .ci/fresh-machine.sh [RELEASE]
#
# Prints every step and, at the end, the virtual IP's response. Takes about
# 5 minutes (a release build inside). Cleans up: lab down, unmounts; the
# fresh root stays in /var/tmp for a rerun (delete it for a truly fresh one).
set -euo pipefail
cd "$(dirname "$0")/.."
release=${1:-trixie}
root=/var/tmp/infra-fresh-$release
mirror=${INFRA_LAB_MIRROR:-http://deb.debian.org/debian}
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_home=${CARGO_HOME:-$HOME/.cargo}

if [ ! -e "$root/etc/os-release" ]; then
  echo "fresh-machine: debootstrap --variant=minbase $release" >&2
  debootstrap --variant=minbase "$release" "$root" "$mirror" >/dev/null
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
echo "fresh-machine: the Rust toolchain's linker (gcc, libc6-dev)" >&2
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  gcc libc6-dev ca-certificates >/dev/null

rm -rf "$root/root/infra"
git clone -q --no-hardlinks "$PWD" "$root/root/infra"
# The README's main command, exactly as written there.
command=$(grep -m1 '^export INFRA_VRRP_SECRET=' README.md)
echo "fresh-machine: running the README's main command: $command" >&2

mkdir -p "$root/root/.rustup" "$root/root/.cargo"
unshare --mount --propagation private bash -euo pipefail -c '
  root=$1 rustup_home=$2 cargo_home=$3 command=$4
  # On a real machine / is a mount point (ip netns exec relies on it).
  mount --bind "$root" "$root"
  mount --rbind /dev "$root/dev"
  mount -t proc proc "$root/proc"
  mount --rbind /sys "$root/sys"
  mount -t tmpfs tmpfs "$root/run"
  mount --bind "$rustup_home" "$root/root/.rustup"
  mount --bind "$cargo_home" "$root/root/.cargo"
  status=0
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "cd /root/infra && $command" || status=$?
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/root/.cargo/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "cd /root/infra && ./target/release/infra lab down" || true
  exit "$status"
' fresh "$root" "$rustup_home" "$cargo_home" "$command"
echo >&2
echo "fresh-machine: the README's main command ended with the response above" >&2
