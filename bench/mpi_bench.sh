#!/usr/bin/env bash
# Training over processes against threads, side by side on this machine: images/s of `capsnet train`
# for 1 process of 1 thread, 1 process of N threads, and N processes (mpirun) of 1 thread each, the same
# global batch, alternating, best of --repeats; then the gradient exchange alone (mpi_exchange) for N
# ranks. Prints a markdown table with the ratios to 1 process of N threads.
#   bench/mpi_bench.sh [--ranks N] [--batch-size B] [--steps S] [--repeats R] [--out DIR]
# Stop other work on the machine first (a background training run takes the same cores).
set -euo pipefail
cd "$(dirname "$0")/.."

ranks=2 batch=64 steps=10 repeats=3 out=/tmp/capsnet-mpi-bench
usage="usage: $0 [--ranks N] [--batch-size B] [--steps S] [--repeats R] [--out DIR]"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --ranks) ranks=$2; shift 2 ;;
    --batch-size) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
command -v mpirun >/dev/null || { echo "mpi_bench: mpirun not found: run scripts/install_deps.sh" >&2; exit 1; }
[[ -f build/cpu/build.ninja ]] || cmake --preset cpu >/dev/null
cmake --build build/cpu --target capsnet mpi_exchange >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # a root shell (CI, containers)
mpirun=(mpirun --oversubscribe -np "$ranks")
data=${CAPSNET_DATA_DIR:-data/mnist}

# One epoch of `steps` batches, no validation or test scoring: the log's images/s is the training rate
# (the epoch's training time, start-up and data loading excluded).
train_rate() {  # name, threads, the command that starts capsnet (the program, or mpirun ... program)
  local name=$1 threads=$2; shift 2
  rm -rf "$out/$name"
  "$@" train --threads "$threads" --data "$data" --save "$out/$name" --train-limit $((batch * steps)) --batch-size "$batch" --epochs 1 \
    --validation 0 --test-limit 0 --checkpoint-minutes 0 >"$out/$name.log" 2>&1 ||
    { echo "mpi_bench: $name failed, see $out/$name.log" >&2; exit 1; }
  tail -1 "$out/$name/log.csv" | awk -F, '{print $10}'
}

mkdir -p "$out"
declare -A best
configs=("1x1" "1x$ranks" "${ranks}x1")
for ((r = 1; r <= repeats; r++)); do
  for config in "${configs[@]}"; do
    case $config in
      1x1) rate=$(train_rate "$config" 1 build/cpu/capsnet) ;;
      "1x$ranks") rate=$(train_rate "$config" "$ranks" build/cpu/capsnet) ;;
      *) rate=$(train_rate "$config" 1 "${mpirun[@]}" build/cpu/capsnet) ;;
    esac
    awk -v a="$rate" -v b="${best[$config]:-0}" 'BEGIN {exit !(a > b)}' && best[$config]=$rate
  done
done
exchange=$("${mpirun[@]}" build/cpu/bench/mpi_exchange)

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; $(mpirun --version | head -1)"
echo "seed preset, global batch $batch, $steps steps per run, best of $repeats"
echo
echo "| processes x threads | images/s | vs 1 process x $ranks threads |"
echo "|---|---:|---:|"
for config in "${configs[@]}"; do
  awk -v c="$config" -v a="${best[$config]}" -v ref="${best[1x$ranks]}" 'BEGIN {printf "| %s | %.1f | %.2fx |\n", c, a, a / ref}'
done
echo
echo "gradient exchange alone: $exchange"
