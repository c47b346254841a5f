#!/bin/bash
# make fuzz: a campaign of SECONDS (default 60) over each target, with
# ASan over our code and libbpf's, and libFuzzer's coverage guidance.
# FUZZ_TARGETS picks targets; FUZZ_JOBS runs that many at once. A crash, a
# hang (over 1 s), a leak or an allocation over 512 MiB fails the run, and
# leaves its input in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
targets=${FUZZ_TARGETS:-component link rewrite btf btf_ext inline}
jobs=${FUZZ_JOBS:-1}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# libbpf-sys compiles libbpf with these: instrumented like our code.
export CC=clang CXX=clang++ LIBBPF_SYS_EXTRA_CFLAGS="-fsanitize=address -fsanitize=fuzzer-no-link"
export ASAN_OPTIONS=detect_odr_violation=0
cargo +nightly fuzz build -O
./seeds.sh corpus
mkdir -p artifacts
bin=target/x86_64-unknown-linux-gnu/release
run() {
  "$bin/$1" "corpus/$1" -max_total_time="$secs" -max_len=65536 -timeout=1 \
    -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
    -artifact_prefix="artifacts/$1-" >"artifacts/$1.log" 2>&1
}
failed=0
running=0
for t in $targets; do
  (run "$t" && echo "fuzz: $t: $(grep -o 'number_of_executed_units: [0-9]*' "artifacts/$t.log"), no crash" ||
    { echo "fuzz: $t: FAILED, see fuzz/artifacts/$t.log"; exit 1; }) &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n || failed=1; running=$((running - 1)); fi
done
while [ "$running" -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
exit $failed
