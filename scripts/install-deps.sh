#!/usr/bin/env bash
# Install the Debian 12 packages the build, tests, demo and benchmarks need,
# and only those that are missing (apt-get update runs only when needed).
set -euo pipefail

pkgs=(
  cmake make gcc pkg-config
  libpmem2-dev liburing-dev libisal-dev libcriterion-dev
  redis-tools redis-server python3-redis curl wrk
  libevent-dev libuv1-dev
)
case "${1:-}" in
--bench) pkgs+=(libpmemlog-dev libleveldb-dev gnuplot-nox valgrind) ;;
--fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
--abi) pkgs+=(abigail-tools) ;;
# make test-vm: QEMU, the guest's initramfs (busybox, cpio, the kernel
# packages' compressed modules, depmod) and the fsdax setup the guest runs
# from the host's tree (ndctl, mkfs.ext4).
--vm) pkgs+=(qemu-system-x86 busybox-static ndctl e2fsprogs cpio xz-utils zstd kmod) ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
