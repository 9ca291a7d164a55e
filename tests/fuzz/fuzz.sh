#!/usr/bin/env bash
# Runs the libFuzzer harnesses (tests/fuzz/*.cpp) for a fixed time each and reports, per harness,
# executions, coverage (edges), corpus size and findings; exit 1 when any harness found a crash, a leak,
# a sanitizer report or a timeout. Builds the `fuzz` preset first (clang 14, ASan + UBSan), which also
# writes the seed corpora. Regression inputs (tests/fuzz/regressions/<harness>/*.hex: the bytes of an input
# that once failed, as hex text, so nothing binary is committed) are replayed first and must pass.
#   tests/fuzz/fuzz.sh [--seconds 15] [--seed N] [--only NAME] [--corpus DIR] [--no-build]
# --corpus: where the growing corpora live (default build/fuzz/corpus; kept between runs, so a long
# run continues where the last one stopped). --seed: libFuzzer's random seed (default 0: a new one each
# run); the test command runs it for 10 s each with --seed 1, so on a fresh clone it mutates the same way
# every time (a finding there is a bug, not luck).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
seconds=15 seed=0 only="" corpus="$root/build/fuzz/corpus" build=1
usage="usage: $0 [--seconds N] [--seed N] [--only NAME] [--corpus DIR] [--no-build]"
while (($#)); do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --corpus) corpus=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
[[ $seconds =~ ^[0-9]+$ ]] && ((seconds > 0)) || { echo "fuzz.sh: --seconds must be a positive integer" >&2; exit 2; }
[[ $seed =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --seed must be a non-negative integer" >&2; exit 2; }
command -v clang++-14 >/dev/null || { echo "fuzz.sh: clang++-14 is missing (scripts/install_deps.sh installs it)" >&2; exit 1; }

if ((build)); then
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j "$(nproc)"
fi
bin="$root/build/fuzz/tests/fuzz"
harnesses=(safetensors model idx share_link share_link_sealed drawing)
[[ -n $only ]] && harnesses=("$only")
findings_dir="$root/build/fuzz/findings"
mkdir -p "$findings_dir"

printf '\nfuzz.sh: %s s per harness, corpora in %s, clang %s, %s\n' "$seconds" "$corpus" \
  "$(clang++-14 --version | head -1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1)" "$(date -u '+%Y-%m-%d %H:%M UTC')"
table="| harness | executions | exec/s | edges covered | features | corpus | findings |\n| --- | ---: | ---: | ---: | ---: | ---: | --- |\n"
failed=0
for name in "${harnesses[@]}"; do
  fuzzer="$bin/fuzz_$name"
  [[ -x $fuzzer ]] || { echo "fuzz.sh: $fuzzer is missing (build the fuzz preset)" >&2; exit 1; }
  work="$corpus/$name"
  mkdir -p "$work"
  log="$findings_dir/$name.log"
  # Replay the regression inputs (each must now pass), then fuzz from the seeds and the kept corpus.
  regressions="$root/tests/fuzz/regressions/$name"
  if compgen -G "$regressions/*.hex" >/dev/null; then
    replay="$findings_dir/$name.regressions"
    rm -rf "$replay" && mkdir -p "$replay"
    for hex in "$regressions"/*.hex; do
      digits=$(sed 's/#.*//' "$hex" | tr -cd '0-9a-fA-F')  # comments start with #
      printf '%b' "$(sed 's/../\\x&/g' <<<"$digits")" >"$replay/$(basename "$hex" .hex)"
    done
    if "$fuzzer" "$replay"/* >"$replay.log" 2>&1; then
      echo "fuzz.sh: $name: $(find "$replay" -type f | wc -l) regression input(s) pass"
    else
      echo "fuzz.sh: $name: a regression input fails again (see $replay.log)"
      failed=1
    fi
  fi
  status=0
  "$fuzzer" -max_total_time="$seconds" -seed="$seed" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$findings_dir/$name-" "$work" "$bin/seeds/$name" >"$log" 2>&1 || status=$?
  executions=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  last=$(grep -E '#[0-9]+.*cov: ' "$log" | tail -1)
  edges=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || echo 0)
  features=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || echo 0)
  files=$(find "$work" -type f | wc -l)
  if ((status != 0)); then
    found="FOUND: $(grep -m1 -oE 'ERROR: [A-Za-z]+[^ ]*: [^ ]+|ERROR: libFuzzer: [a-z-]+|runtime error: .*' "$log" | head -1) ($log)"
    failed=1
  else
    found="none"
  fi
  table+="| fuzz_$name | $executions | $rate | $edges | $features | $files | $found |\n"
done
printf '\n%b' "$table"
if ((failed)); then
  echo "fuzz.sh: FAILED: findings above (inputs as $findings_dir/<harness>-crash-*: add them to tests/fuzz/regressions/ once fixed)"
  exit 1
fi
echo "fuzz.sh: no findings"
