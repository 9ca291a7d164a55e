#!/usr/bin/env bash
# Training images/s of this program's CPU backend against the same CapsNet in PyTorch (Debian's
# python3-torch, CPU), same preset, batch size and thread count, in one run, alternating the two so
# machine noise hits both; and both as a share of the machine's floor, measured in the same run: the
# per-core GEMM peak (gemm_bench --peak) times the threads, over the FLOPs of one training image.
# Prints a markdown table: ours, PyTorch, ours / PyTorch, ours as % of the floor, and ours on one
# thread with the second core's speed-up.
#   bench/cpu_vs_pytorch.sh [--batch-sizes "64 256"] [--steps N] [--threads N] [--repeats N] [--no-pytorch]
# A batch size of 0 stands for the preset's default (seed 256, paper 128).
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: $0 [--batch-sizes \"64 0\"] [--steps N] [--threads N] [--repeats N] [--no-pytorch]  (0 = the preset's default batch)"
batches="64 0" steps=4 threads=$(nproc) repeats=3 pytorch=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --batch-sizes) batches=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --no-pytorch) pytorch=0; shift ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done

# Debian's torch lives in /usr/bin/python3 (a pyenv python3 earlier on PATH would not see it).
python=/usr/bin/python3
bash scripts/install_deps.sh --with-pytorch >/dev/null
[[ -f build/cpu/build.ninja ]] || cmake --preset cpu >/dev/null
cmake --build build/cpu --target train_speed gemm_bench >/dev/null

field() { sed -E "s/.*\"$1\": \"?([^,\"}]*)\"?.*/\1/" <<<"$2"; }
best() { sort -g | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
default_batch() { [[ $1 == seed ]] && echo 256 || echo 128; }

peak=$(field gemm_peak_gflops "$(build/cpu/bench/gemm_bench --peak 0.5)")
flops=$(build/cpu/bench/train_speed --steps 1 --warmup 0 --batch-size 1 --threads 1 --profile --gemm-peak "$peak" |
        sed -nE 's/^([0-9.]+) GFLOP per training image.*/\1/p')
floor=$(awk -v p="$peak" -v t="$threads" -v f="$flops" 'BEGIN { printf "%.1f", p * t / f }')
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; torch $("$python" -c 'import torch; print(torch.__version__)')"
echo "GEMM peak $peak GFLOP/s per core (gemm_bench --peak); $flops GFLOP per training image; floor on $threads threads: $floor images/s"
echo "$steps timed steps after 1 warm-up, best of $repeats runs each, alternating"
echo
echo "| preset | batch | capsnet img/s | PyTorch img/s | capsnet / PyTorch | % of floor | capsnet, 1 thread | 2nd core |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for preset in seed paper; do
  for batch in $batches; do
    [[ $batch == 0 ]] && batch=$(default_batch "$preset")
    ours=() theirs=() single=()
    for ((r = 0; r < repeats; r++)); do
      line=$(build/cpu/bench/train_speed --preset "$preset" --batch-size "$batch" --steps "$steps" --threads "$threads")
      ours+=("$(field images_per_second "$line")")
      line=$(build/cpu/bench/train_speed --preset "$preset" --batch-size "$batch" --steps "$(( (steps + 1) / 2 ))" --threads 1)
      single+=("$(field images_per_second "$line")")
      if ((pytorch)); then
        line=$(OMP_NUM_THREADS=$threads "$python" bench/pytorch_capsnet.py train-speed --preset "$preset" \
                 --batch-size "$batch" --steps "$steps" --warmup 1 --threads "$threads")
        theirs+=("$(field images_per_second "$line")")
      fi
    done
    a=$(printf '%s\n' "${ours[@]}" | best) s=$(printf '%s\n' "${single[@]}" | best)
    if ((pytorch)); then
      b=$(printf '%s\n' "${theirs[@]}" | best)
      versus="$(printf '%.1f' "$b") | $(ratio "$a" "$b")x"
    else
      versus="- | -"
    fi
    share=$(awk -v a="$a" -v f="$floor" 'BEGIN { printf "%.0f%%", 100 * a / f }')
    printf '| %s | %d | %.1f | %s | %s | %.1f | %sx |\n' "$preset" "$batch" "$a" "$versus" "$share" "$s" "$(ratio "$a" "$s")"
  done
done
