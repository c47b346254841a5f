# Sourced by the guest scripts: fetch_kernel SERIES unpacks the newest
# Debian cloud kernel of SERIES (5.10, 6.1, 6.12) into $out/kernel-SERIES.
# 6.1 and 6.12 come from the system's own suites (bookworm); 5.10 from
# bullseye, of the same archive, through a sources entry and lists of the
# test's own under $out/apt, never the system's.
apt_for() {
  case $1 in
    5.10)
      local d=$out/apt uri
      uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
      mkdir -p "$d/sources" "$d/lists/partial"
      printf 'Types: deb\nURIs: %s\nSuites: bullseye\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "${uri:-http://deb.debian.org/debian}" >"$d/sources/bullseye.sources"
      echo "-o Dir::Etc::sourcelist=- -o Dir::Etc::sourceparts=$d/sources -o Dir::State::Lists=$d/lists -o Dir::Cache=$d"
      ;;
    *) echo "" ;;
  esac
}

fetch_kernel() {
  local series=$1 dir=$out/kernel-$1 pattern pkg opts
  [ -d "$dir/boot" ] && return
  opts=$(apt_for "$series")
  # 5.10's and 6.1's packages are named 5.10.0-N-cloud-amd64, 6.12's
  # 6.12.N+debV-cloud-amd64.
  pattern="^linux-image-${series//./\\.}[.][0-9]+[-+][0-9a-z+]*-cloud-amd64-unsigned$"
  # shellcheck disable=SC2086 # $opts is a list of apt options
  pkg=$(apt-cache $opts search "$pattern" | awk '{print $1}' | sort -V | tail -1)
  # shellcheck disable=SC2086
  [ -n "$pkg" ] || { apt-get $opts update -qq; pkg=$(apt-cache $opts search "$pattern" | awk '{print $1}' | sort -V | tail -1); }
  [ -n "$pkg" ] || { echo "vm: no Debian $series cloud kernel package found" >&2; exit 1; }
  rm -rf "$out/dl" && mkdir -p "$out/dl"
  # shellcheck disable=SC2086
  (cd "$out/dl" && apt-get $opts download -qq "$pkg" >/dev/null 2>&1)
  rm -rf "$dir.tmp" && dpkg -x "$out"/dl/*.deb "$dir.tmp" && mv "$dir.tmp" "$dir"
}
