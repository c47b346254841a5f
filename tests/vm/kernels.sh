# Sourced by the guest scripts: fetch_kernel SERIES unpacks the newest
# Debian cloud kernel of SERIES (6.1, 6.12) into $out/kernel-SERIES.
fetch_kernel() {
  local series=$1 dir=$out/kernel-$1 pattern pkg
  [ -d "$dir/boot" ] && return
  # 6.1's packages are named 6.1.0-N-cloud-amd64, 6.12's 6.12.N+debV-cloud-amd64.
  pattern="^linux-image-${series//./\\.}[.][0-9]+[-+][0-9a-z+]*-cloud-amd64-unsigned$"
  pkg=$(apt-cache search "$pattern" | awk '{print $1}' | sort -V | tail -1)
  [ -n "$pkg" ] || { apt-get update -qq; pkg=$(apt-cache search "$pattern" | awk '{print $1}' | sort -V | tail -1); }
  [ -n "$pkg" ] || { echo "vm: no Debian $series cloud kernel package found" >&2; exit 1; }
  rm -rf "$out/dl" && mkdir -p "$out/dl"
  (cd "$out/dl" && apt-get download -qq "$pkg" >/dev/null 2>&1)
  rm -rf "$dir.tmp" && dpkg -x "$out"/dl/*.deb "$dir.tmp" && mv "$dir.tmp" "$dir"
}
