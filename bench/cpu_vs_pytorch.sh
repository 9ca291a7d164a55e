#!/usr/bin/env bash
# Training images/s of this program's CPU backend against the same CapsNet in PyTorch (Debian's
# python3-torch, CPU), same preset, batch size and thread count, in one run, alternating the two so
# machine noise hits both. Prints a markdown table with the ratio (ours / PyTorch).
#   bench/cpu_vs_pytorch.sh [--batch-size N] [--steps N] [--threads N] [--repeats N]
set -euo pipefail
cd "$(dirname "$0")/.."

batch=64 steps=4 threads=$(nproc) repeats=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --batch-size) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    *) echo "usage: $0 [--batch-size N] [--steps N] [--threads N] [--repeats N]" >&2; exit 2 ;;
  esac
done

# Debian's torch lives in /usr/bin/python3 (a pyenv python3 earlier on PATH would not see it).
python=/usr/bin/python3
bash scripts/install_deps.sh --with-pytorch >/dev/null
[[ -f build/cpu/build.ninja ]] || cmake --preset cpu >/dev/null
cmake --build build/cpu --target train_speed >/dev/null

field() { sed -E "s/.*\"$1\": \"?([^,\"}]*)\"?.*/\1/" <<<"$2"; }
best() { sort -g | tail -1; }

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; torch $("$python" -c 'import torch; print(torch.__version__)')"
echo "batch $batch, $steps timed steps after 1 warm-up, $threads threads, best of $repeats runs each"
echo
echo "| preset | capsnet img/s | PyTorch img/s | ratio |"
echo "|---|---:|---:|---:|"
for preset in seed paper; do
  ours=() theirs=()
  for ((r = 0; r < repeats; r++)); do
    line=$(build/cpu/bench/train_speed --preset "$preset" --batch-size "$batch" --steps "$steps" --threads "$threads")
    ours+=("$(field images_per_second "$line")")
    line=$(OMP_NUM_THREADS=$threads "$python" bench/pytorch_capsnet.py train-speed --preset "$preset" \
             --batch-size "$batch" --steps "$steps" --warmup 1 --threads "$threads")
    theirs+=("$(field images_per_second "$line")")
  done
  a=$(printf '%s\n' "${ours[@]}" | best) b=$(printf '%s\n' "${theirs[@]}" | best)
  printf '| %s | %.1f | %.1f | %.2fx |\n' "$preset" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')"
done
