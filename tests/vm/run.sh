#!/usr/bin/env bash
# Runs the test binaries inside qemu guests booted with Debian's cloud
# kernels, which allow freplace (this machine's kernel does not): 5.10, 6.1
# and 6.12 ($XDPCHAIN_VM_KERNELS). Builds the initramfs from busybox, the test
# binaries, the tools they call and the shared libraries those need;
# reports pass or fail per kernel and test; fails if any fails, if a guest
# panics, or if one runs past the timeout.
#
#   tests/vm/run.sh [NAME...]   test binaries, c-shared (tests/c/shared.sh)
#                               and python (the pytest suite); default: all
#   tests/vm/run.sh --bench     (the benchmark instead, on the first kernel;
#                                its table goes to bench/results/vm.txt)
set -euo pipefail
bench=0
if [ "${1:-}" = --bench ]; then bench=1; shift; fi
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$repo/target/vm
timeout_s=${XDPCHAIN_VM_TIMEOUT:-2400}
mkdir -p "$out"
cd "$repo"

# --- the kernels: the newest cloud kernel of each series Debian offers --------
read -r -a kernels <<<"${XDPCHAIN_VM_KERNELS:-5.10 6.1 6.12}"
[ $bench = 0 ] || kernels=("${kernels[0]}")
. tests/vm/kernels.sh
for k in "${kernels[@]}"; do fetch_kernel "$k"; done

# --- what runs in the guest ------------------------------------------------
if [ $bench = 1 ]; then
  cargo build -q --release -p libxdpchain --features bench --example bench
  tests=("$repo/target/release/examples/bench")
  XDPCHAIN_BENCH_BUILD_ONLY=1 "${tests[0]}"
else
# Library unit tests and integration tests; not examples or binaries, nor
# the C header's check (no kernel in it; it reads the sources), nor the
# scale test (no kernel either, and every guest would do its work alike).
mapfile -t tests < <(cargo test --workspace --no-run --message-format=json 2>/dev/null |
  grep -E '"kind":\["(lib|test)"\]' | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 |
  grep -v -e '/header-[0-9a-f]*$' -e '/scale-[0-9a-f]*$')
fi
if [ $# -gt 0 ]; then
  wanted=" $* "
  filtered=()
  for t in "${tests[@]}"; do
    name=$(basename "$t"); name=${name%-*}
    [[ "$wanted" == *" $name "* ]] && filtered+=("$t")
  done
  tests=("${filtered[@]}")
fi
# Beside the test binaries, scripts: two C loaders and the command on one
# interface, in the kinds of chain only this kernel has too, and the Python
# suite: scripts[i] names what cmds[i] runs.
scripts=() cmds=()
names="$*"
wants() { [ $bench = 0 ] && { [ -z "$names" ] || [[ " $names " == *" $1 "* ]]; }; }
venv=$repo/target/py-venv
if wants c-shared; then
  for kind in dynamic counting static; do
    scripts+=("c-shared/$kind") cmds+=("bash tests/c/shared.sh $kind")
  done
fi
if wants python; then
  scripts+=(python)
  cmds+=("(cd /tmp && XDPCHAIN_TEST_OBJECTS=$repo/target/test-bpf XDPCHAIN_CLI=$repo/target/debug/xdpchain XDPCHAIN_C_PREFIX=$repo/target/c-prefix $venv/bin/python -m pytest -q --color=no -p no:cacheprovider $repo/bindings/python/tests)")
fi
[ $((${#tests[@]} + ${#scripts[@]})) -gt 0 ] || { echo "vm: no tests" >&2; exit 1; }
cargo build -q -p xdpchain-cli
# The C library and its example loader, installed as users build them, and
# the Python package, unless installed since its sources last changed.
[ $bench = 1 ] || tests/c/install.sh
if [[ " ${scripts[*]} " == *" python "* ]] &&
   { [ ! -e "$venv/pyvenv.cfg" ] ||
     [ -n "$(find libxdpchain bindings/python pyproject.toml -path bindings/python/tests -prune -o -newer "$venv/pyvenv.cfg" -print -quit)" ]; }; then
  tests/python/install.sh
fi

# The guest has no clang: build every test object beforehand (the host run
# of the tests builds their variants; this adds the plain ones).
tests/bpf/build.sh target/test-bpf
# ...and has no network: the objects Debian ships come along.
tests/corpus/fetch.sh

# --- the initramfs ------------------------------------------------------------
root=$out/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,bb,proc,sys,dev,tmp,run,lib/modules,etc}

# Tools the tests call, with the libraries they link (ldd), at their own paths.
copy() {
  local f
  for f in "$@"; do
    [ -e "$root$f" ] || { mkdir -p "$root$(dirname "$f")"; cp -L "$f" "$root$f"; }
  done
}
copy_with_libs() {
  local bin
  for bin in "$@"; do
    copy "$bin"
    copy $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*' | sort -u)
  done
}
cp /bin/busybox "$root/bb/busybox"
# Static from busybox-static; a dynamic one brings its libraries.
copy $(ldd /bin/busybox 2>/dev/null | grep -o '/[^ ]*' | sort -u)
for applet in $("$root/bb/busybox" --list); do [ "$applet" = busybox ] || ln -s busybox "$root/bb/$applet"; done
tools=()
toolnames=(ip bpftool ping bash nsenter setpriv unshare xdp-loader)
for t in "${toolnames[@]}"; do
  p=$(command -v "$t") || { echo "vm: $t missing" >&2; exit 1; }
  tools+=("$(readlink -f "$p")")
done
copy_with_libs "${tools[@]}"
for t in "${toolnames[@]}"; do
  p=$(readlink -f "$(command -v "$t")")
  [ -e "$root/usr/sbin/$t" ] || ln -sf "$p" "$root/usr/sbin/$t"
done
# bash as /bin/sh: busybox's sh runs its own applets (its `ip`) first.
ln -sf /usr/sbin/bash "$root/bin/bash"
ln -sf /usr/sbin/bash "$root/bin/sh"

# The test binaries and the command, stripped, at the paths compiled into
# them, with the objects they load.
strip_copy() {
  mkdir -p "$root$(dirname "$1")"
  strip --strip-debug -o "$root$1" "$1"
  copy $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | sort -u)
}
for t in "${tests[@]}"; do strip_copy "$t"; done
strip_copy "$repo/target/debug/xdpchain"
if [ $bench = 0 ]; then
  prefix=$repo/target/c-prefix
  copy_with_libs "$prefix/bin/xdpchain-load" "$prefix/lib/libxdpchain.so.0"
  ln -sf libxdpchain.so.0 "$root$prefix/lib/libxdpchain.so"
  copy "$repo/tests/c/shared.sh"
fi
if [[ " ${scripts[*]} " == *" python "* ]]; then
  # The interpreter the virtual environment runs, its standard library
  # without what the tests never import, the environment without pip, and
  # the suite with the example it runs.
  base=$(readlink "$venv/bin/python3")
  copy_with_libs "$base"
  stdlib=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')
  tar -C / -cf - --exclude=__pycache__ --exclude="${stdlib#/}"/{test,site-packages,idlelib,tkinter,ensurepip,lib2to3,'config-*'} \
    "${stdlib#/}" | tar -C "$root" -xf -
  tar -C / -cf - --exclude=__pycache__ --exclude='site-packages/pip*' --exclude='site-packages/setuptools*' \
    --exclude='site-packages/pkg_resources' "${venv#/}" | tar -C "$root" -xf -
  find "$root$venv" -name '*.so' -exec strip --strip-debug {} +
  # The libraries that extension modules link (libffi for ctypes, ...).
  copy_with_libs "$stdlib"/lib-dynload/*.so $(find "$venv" -name '*.so')
  copy "$repo/bindings/python/tests/test_xdpchain.py" "$repo/examples/python/chain_counters.py"
fi
mkdir -p "$root$repo/target/test-bpf" "$root$repo/target/bench"
cp target/test-bpf/*.o "$root$repo/target/test-bpf/"
[ $bench = 0 ] || cp target/bench/*.o "$root$repo/target/bench/"
cp -r target/corpus "$root$repo/target/"
# The installed libxdp's objects: xdp-loader loads its dispatcher from there.
bpfobj=/usr/lib/$(uname -m)-linux-gnu/bpf
mkdir -p "$root$bpfobj" && cp "$bpfobj"/*.o "$root$bpfobj/"

{
  echo '#!/bb/sh'
  echo 'export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/bb'
  echo 'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev'
  # Terminals, for the command's tests of what it draws on one.
  echo 'mkdir -p /dev/pts; mount -t devpts devpts /dev/pts'
  # No tmpfs over /tmp or /run: the repository's own path may lie there.
  echo 'mkdir -p /tmp /run/netns'
  echo 'mount -t bpf bpf /sys/fs/bpf'
  echo 'insmod /lib/modules/veth.ko'
  echo 'ip link set lo up'
  # This kernel has freplace: the probe must say so.
  echo 'export XDPCHAIN_TEST_PREBUILT=1 XDPCHAIN_EXPECT_FREPLACE=1 RUST_BACKTRACE=1'
  echo "cd $repo"
  echo 'echo "XDPCHAIN-VM-KERNEL $(uname -r)"'
  if [ $bench = 1 ]; then
    echo 'echo XDPCHAIN-BENCH-BEGIN'
    echo "XDPCHAIN_BENCH_PREBUILT=1 ${tests[0]}; echo \"XDPCHAIN-TEST bench rc=\$?\""
    echo 'echo XDPCHAIN-BENCH-END'
  else
  # Twice: chains in auto mode (dynamic here, where components allow), then
  # the same tests with static chains.
  for mode in auto static; do
    for t in "${tests[@]}"; do
      name=$(basename "$t"); name=${name%-*}
      echo "echo '=== $name ($mode)'"
      echo "XDPCHAIN_MODE=$mode $t --test-threads=2 </dev/null; echo \"XDPCHAIN-TEST $name/$mode rc=\$?\""
    done
  done
  for i in "${!scripts[@]}"; do
    echo "echo '=== ${scripts[$i]}'"
    echo "${cmds[$i]} </dev/null; echo \"XDPCHAIN-TEST ${scripts[$i]} rc=\$?\""
  done
  fi
  echo 'echo XDPCHAIN-VM-DONE'
  echo 'poweroff -f'
} > "$root/init"
chmod +x "$root/init"
# --- boot each kernel ----------------------------------------------------------
results=()
if [ $bench = 0 ]; then
  for mode in auto static; do
    for t in "${tests[@]}"; do name=$(basename "$t"); results+=("${name%-*}/$mode"); done
  done
  results+=("${scripts[@]}")
fi
# Each kernel's initramfs: the same files, and its own veth module.
for k in "${kernels[@]}"; do
  veth=$(find "$out/kernel-$k/lib/modules" -name 'veth.ko*' | head -1)
  # busybox's insmod takes modules uncompressed (6.12's ship as .ko.xz).
  case $veth in
    *.xz) xz -dc "$veth" >"$root/lib/modules/veth.ko" ;;
    *) cp "$veth" "$root/lib/modules/veth.ko" ;;
  esac
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initrd-$k.gz"
done

# The guests run side by side, one vCPU each: the kernel patches the XDP
# dispatcher's code live (through int3) on every attach, and under qemu's
# multi-threaded TCG (no KVM here) another vCPU can run the half-patched
# code (seen: "Oops: int3" in bpf_dispatcher_xdp_func, 6.12 guest).
boot() {
  local k=$1 vmlinuz log=$out/console-$1.log
  rm -f "$log.rc" "$log.txt"
  vmlinuz=$(ls "$out/kernel-$k"/boot/vmlinuz-* | head -1)
  echo "vm: $k: booting $(basename "$vmlinuz") with ${#tests[@]} test binaries and ${#scripts[@]} scripts ($(du -h "$out/initrd-$k.gz" | cut -f1) initramfs)"
  local rc=0
  timeout --foreground "$timeout_s" qemu-system-x86_64 -m 2048 -smp 1 -nographic -no-reboot \
    -kernel "$vmlinuz" -initrd "$out/initrd-$k.gz" \
    -append "console=ttyS0 quiet panic=-1 oops=panic" </dev/null >"$log" 2>&1 || rc=$?
  echo $rc >"$log.rc"
  tr -d '\r' <"$log" >"$log.txt"
}
guests=()
for k in "${kernels[@]}"; do boot "$k" & guests+=($!); done
trap 'kill "${guests[@]}" 2>/dev/null || true' EXIT
wait "${guests[@]}" || true
trap - EXIT

# Passes first, failures last with their output: CI shows a log's end.
failed=() broken=()
for k in "${kernels[@]}"; do
  log=$out/console-$k.log
  qrc=$(cat "$log.rc" 2>/dev/null || echo none)
  kfail=0
  if [ $bench = 1 ]; then
    sed -n '/XDPCHAIN-BENCH-BEGIN/,/XDPCHAIN-BENCH-END/p' "$log.txt" | sed '1d;$d' | grep -v '^XDPCHAIN-TEST' > bench/results/vm.txt
    cat bench/results/vm.txt
    grep -q "XDPCHAIN-TEST bench rc=0" "$log.txt" || kfail=1
  fi
  for name in "${results[@]}"; do
    rc=$(grep -o "XDPCHAIN-TEST $name rc=[0-9]*" "$log.txt" | tail -1 | cut -d= -f2 || true)
    if [ "$rc" = 0 ]; then echo "vm: $k: $name passed"; else failed+=("$k $name ${rc:-none}"); kfail=1; fi
  done
  if ! grep -q XDPCHAIN-VM-DONE "$log.txt"; then
    broken+=("$k: the guest did not finish (qemu rc $qrc; timeout ${timeout_s}s or panic)"); kfail=1
  fi
  if grep -q "Kernel panic" "$log.txt"; then broken+=("$k: the guest kernel panicked"); kfail=1; fi
  [ $kfail != 0 ] || echo "vm: $k: all passed on $(grep -o 'XDPCHAIN-VM-KERNEL .*' "$log.txt" | cut -d' ' -f2)"
done
[ $((${#failed[@]} + ${#broken[@]})) = 0 ] && exit 0
for f in "${failed[@]}"; do
  read -r k name rc <<<"$f"
  log=$out/console-$k.log.txt
  echo "vm: $k: $name FAILED (rc=$rc); console log in $log"
  # The failing part's output: from its header (test binaries print
  # "=== NAME (MODE)", scripts "=== NAME") to its result line.
  for header in "=== $name" "=== ${name%/*} (${name#*/})"; do
    if grep -qxF "$header" "$log"; then
      sed -n "\|^$header\$|,\|XDPCHAIN-TEST $name rc=|p" "$log" | tail -80
      break
    fi
  done
done
for b in "${broken[@]}"; do
  echo "vm: $b; the end of its console log (${out}/console-${b%%:*}.log.txt):"
  tail -60 "$out/console-${b%%:*}.log.txt"
done
exit 1
