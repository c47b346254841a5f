#!/usr/bin/env bash
# Installs what building and testing need, if missing, and mounts bpffs.
# Runs as root on Debian or Ubuntu.
set -euo pipefail
need=()
for pair in clang:clang llvm-objdump:llvm llvm-strip:llvm pkg-config:pkg-config ip:iproute2 \
            bpftool:bpftool ping:iputils-ping setpriv:util-linux unshare:util-linux nsenter:util-linux \
            qemu-system-x86_64:qemu-system-x86 cpio:cpio strip:binutils \
            xdp-loader:xdp-tools dpkg-buildpackage:dpkg-dev dh:debhelper dh_python3:dh-python \
            lintian:lintian debootstrap:debootstrap systemd-analyze:systemd; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
for pair in /bin/busybox:busybox-static /usr/include/libelf.h:libelf-dev /usr/include/zlib.h:zlib1g-dev \
            /usr/include/linux/bpf.h:linux-libc-dev /usr/bin/time:time; do
  [ -e "${pair%%:*}" ] || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo (Rust) is required: https://rustup.rs" >&2; exit 1; }
mount | grep -q ' /sys/fs/bpf type bpf' || mount -t bpf bpf /sys/fs/bpf
