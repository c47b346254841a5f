#!/bin/bash
# make fuzz: two campaigns of SECONDS (default 60) over each target, with
# ASan over our code and libbpf's, and libFuzzer's coverage guidance: one
# of inputs up to 64 KiB; then one at scale, whose mutator grows records
# and names (XDPCHAIN_FUZZ_SCALE) into inputs of up to 2 MiB, so that costs
# that grow faster than the input show. FUZZ_TARGETS picks targets;
# FUZZ_JOBS runs that many at once; FUZZ_CAMPAIGNS picks "small", "scale"
# or both; FUZZ_RUNS=N ends each target's run after N inputs. A crash, a
# hang (over 1 s; 5 s at scale), a leak or memory past the bounds (512 MiB
# an allocation; 1 GiB in all at scale) fails the run, and leaves its
# input in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
targets=${FUZZ_TARGETS:-component link rewrite btf btf_ext inline}
jobs=${FUZZ_JOBS:-1}
campaigns=${FUZZ_CAMPAIGNS:-small scale}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# libbpf-sys compiles libbpf with these: instrumented like our code.
export CC=clang CXX=clang++ LIBBPF_SYS_EXTRA_CFLAGS="-fsanitize=address -fsanitize=fuzzer-no-link"
export ASAN_OPTIONS=detect_odr_violation=0
cargo +nightly fuzz build -O
./seeds.sh corpus
mkdir -p artifacts
bin=target/x86_64-unknown-linux-gnu/release
run() { # CAMPAIGN TARGET
  local corpus=corpus/$2 opts=(-max_len=65536 -timeout=1 -rss_limit_mb=2048 -malloc_limit_mb=512)
  if [ "$1" = scale ]; then
    # A corpus of its own, seeded anew from the small one: libFuzzer keeps
    # its corpus in memory, which grown inputs would fill past the bound.
    # ASan's quarantine of freed memory shrinks for the same reason.
    corpus=corpus-scale/$2
    rm -rf "$corpus"
    mkdir -p "$corpus"
    cp corpus/"$2"/* "$corpus"/
    opts=(-max_len=2097152 -timeout=5 -rss_limit_mb=1024 -malloc_limit_mb=1024)
    export XDPCHAIN_FUZZ_SCALE=1 ASAN_OPTIONS=$ASAN_OPTIONS:quarantine_size_mb=32
  fi
  [ -z "${FUZZ_RUNS:-}" ] || opts+=(-runs="$FUZZ_RUNS")
  "$bin/$2" "$corpus" -max_total_time="$secs" "${opts[@]}" -print_final_stats=1 \
    -artifact_prefix="artifacts/$1-$2-" >"artifacts/$1-$2.log" 2>&1
}
failed=0
for c in $campaigns; do
  running=0
  for t in $targets; do
    (run "$c" "$t" &&
      echo "fuzz: $c: $t: $(grep -o 'number_of_executed_units: [0-9]*' "artifacts/$c-$t.log"), no crash" ||
      { echo "fuzz: $c: $t: FAILED, see fuzz/artifacts/$c-$t.log"; exit 1; }) &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n || failed=1; running=$((running - 1)); fi
  done
  while [ "$running" -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
done
exit $failed
