#!/usr/bin/env bash
# Boots a Debian system (debootstrap: systemd, udev, systemd-networkd) with
# the xdpchain package installed as apt installs it, its unit enabled, and
# /etc/xdpchain/chains.toml declaring chains, in qemu guests running
# Debian's 6.1 and 6.12 kernels ($XDPCHAIN_VM_KERNELS). Inside, a checking
# unit finds: the unit enabled and active; the chain on the veth that
# networkd makes, attached at boot; the chain of a veth made after boot,
# through udev and xdpchain@.service; `systemctl reload xdpchain` applying
# a changed file, keeping the unchanged component's program. Fails if any
# check fails, or the guest does not finish.
#
# Needs the packages in target/deb (tests/deb/run.sh, or `make deb`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$repo/target/vm
timeout_s=${XDPCHAIN_VM_TIMEOUT:-900}
cd "$repo"
read -r -a kernels <<<"${XDPCHAIN_VM_KERNELS:-6.1 6.12}"
. tests/vm/kernels.sh
for k in "${kernels[@]}"; do fetch_kernel "$k"; done
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
debs=("$repo/target/deb/xdpchain_${version}_${arch}.deb")
[ -e "${debs[0]}" ] || make -s deb

# --- the system: Debian as debootstrap makes it, with the package --------------
base=$out/boot-base
if [ ! -e "$base/.complete" ]; then
  rm -rf "$base"
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  debootstrap --variant=minbase --include=systemd,systemd-sysv,udev,iproute2,kmod,libelf1,zlib1g \
    bookworm "$base" "${mirror:-http://deb.debian.org/debian}" >"$out/debootstrap.log" 2>&1 ||
    { tail -20 "$out/debootstrap.log"; exit 1; }
  rm -rf "$base"/var/cache/apt/archives/*.deb "$base"/var/lib/apt/lists/* "$base"/usr/share/{doc,man,locale,info}/*
  touch "$base/.complete"
fi
root=$out/boot-root
rm -rf "$root"
cp -a "$base" "$root"
cp "${debs[@]}" "$root/tmp/"
# As apt would: the maintainer scripts enable the unit (no systemd runs here
# to start it).
chroot "$root" dpkg -i /tmp/"$(basename "${debs[0]}")" >"$out/boot-dpkg.log" 2>&1 ||
  { cat "$out/boot-dpkg.log"; exit 1; }
rm -f "$root"/tmp/*.deb
[ -L "$root/etc/systemd/system/multi-user.target.wants/xdpchain.service" ] ||
  { echo "boot: installing the package did not enable xdpchain.service" >&2; exit 1; }

# The objects the chains file names: the test programs.
tests/bpf/build.sh "$root/usr/lib/xdpchain-test" counter configured
decl() {
  printf '[[interface]]\nname = "%s"\nattach = "skb"\n' "$1"
  printf '[[interface.component]]\npath = "/usr/lib/xdpchain-test/counter.o"\nowner = "mon"\n'
}
{ decl xdpt0; decl xdph0; } >"$root/etc/xdpchain/chains.toml"
# A veth pair that networkd makes at boot, configured, so that the network
# comes online.
mkdir -p "$root/etc/systemd/network"
printf '[NetDev]\nName=xdpt0\nKind=veth\n[Peer]\nName=xdpt1\n' >"$root/etc/systemd/network/10-xdpt.netdev"
for i in 0 1; do
  printf '[Match]\nName=xdpt%s\n[Network]\nAddress=198.18.1.%s/24\nLinkLocalAddressing=no\n' $i $((i + 1)) \
    >"$root/etc/systemd/network/10-xdpt$i.network"
done
chroot "$root" systemctl enable -q systemd-networkd systemd-networkd-wait-online
# The checks, once the machine is up, on the console; then power off.
cat >"$root/usr/local/sbin/xdpchain-check" <<'EOF'
#!/bin/bash
fail=0
check() {
  if eval "$2"; then echo "XDPCHAIN-BOOT ok $1"; else echo "XDPCHAIN-BOOT FAIL $1"; fail=1; fi
}
has() { xdpchain status "$1" 2>/dev/null | grep -q "$2"; }
check "unit enabled" "systemctl is-enabled -q xdpchain.service"
check "unit active" "systemctl is-active -q xdpchain.service"
check "chain attached at boot" "has xdpt0 xdp_count"
ids() { xdpchain status xdpt0 --json | grep -o '"program_id":[0-9]*'; }
before=$(ids)
ip link add xdph0 type veth peer name xdph1
for _ in $(seq 120); do has xdph0 xdp_count && break; sleep 0.5; done
check "chain of an interface that appears later" "has xdph0 xdp_count"
printf '[[interface.component]]\npath = "/usr/lib/xdpchain-test/configured.o"\nglobals = { cfg_verdict = 2 }\nmap-sizes = { hits = 1 }\n' \
  >>/etc/xdpchain/chains.toml
check "reload" "systemctl reload xdpchain"
check "reload applied the change" "has xdph0 xdp_configured"
check "the other interface unchanged" '[ "$(ids)" = "$before" ]'
xdpchain status
systemctl --no-pager status xdpchain.service 'xdpchain@*' | cat
echo "XDPCHAIN-BOOT-DONE rc=$fail"
systemctl poweroff
EOF
chmod +x "$root/usr/local/sbin/xdpchain-check"
cat >"$root/etc/systemd/system/xdpchain-check.service" <<'EOF'
[Unit]
After=xdpchain.service multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/xdpchain-check
StandardOutput=journal+console
StandardError=journal+console
[Install]
WantedBy=multi-user.target
EOF
chroot "$root" systemctl enable -q xdpchain-check.service
# The kernel runs /init from the initramfs: systemd, on the initramfs as
# its root.
ln -sf /lib/systemd/systemd "$root/init"

fail=0
for k in "${kernels[@]}"; do
  vmlinuz=$(ls "$out/kernel-$k"/boot/vmlinuz-* | head -1)
  kver=$(basename "$vmlinuz" | sed 's/^vmlinuz-//')
  rm -rf "$root/lib/modules"
  # veth, which networkd and the check load by name.
  veth=$(find "$out/kernel-$k/lib/modules" -name 'veth.ko*' | head -1)
  rel=${veth#"$out/kernel-$k"/lib/modules/"$kver"/}
  mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
  cp "$veth" "$root/lib/modules/$kver/$rel"
  cp "$out/kernel-$k/lib/modules/$kver"/modules.{builtin,builtin.modinfo,order} "$root/lib/modules/$kver/"
  chroot "$root" depmod "$kver"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out/boot-initrd-$k.gz"
  log=$out/boot-console-$k.log
  echo "vm: $k: booting Debian with systemd and the xdpchain package ($(du -h "$out/boot-initrd-$k.gz" | cut -f1) initramfs)"
  set +e
  timeout --foreground "$timeout_s" qemu-system-x86_64 -m 2048 -smp 1 -nographic -no-reboot -nic none \
    -kernel "$vmlinuz" -initrd "$out/boot-initrd-$k.gz" \
    -append "console=ttyS0 panic=-1 oops=panic rdinit=/init systemd.show_status=0" </dev/null >"$log" 2>&1
  set -e
  tr -d '\r' <"$log" >"$log.txt"
  grep -o 'XDPCHAIN-BOOT .*' "$log.txt" | sed "s/^/vm: $k: /" || true
  if grep -q 'XDPCHAIN-BOOT-DONE rc=0' "$log.txt"; then
    echo "vm: $k: boot passed"
  else
    echo "vm: $k: boot FAILED; console log in $log.txt; its end:"
    tail -60 "$log.txt"
    fail=1
  fi
done
exit $fail
