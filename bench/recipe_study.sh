#!/usr/bin/env bash
# A short study of training recipes on this machine: each configuration trains from scratch for a few
# epochs on the first N training images and is scored on the held-out validation images (never on the
# test set), side by side in one run. Prints a markdown table (validation accuracy after each epoch,
# images/s) and overlays the learning curves in DIR/study.png.
#   bench/recipe_study.sh [--out DIR] [--train-limit N] [--epochs N] [--threads N] [--only NAME,NAME]
# Each configuration is a name and the capsnet train options it adds (see `configs` below).
set -euo pipefail
cd "$(dirname "$0")/.."

out=/tmp/capsnet-recipe-study train_limit=10000 epochs=3 threads=$(nproc) only=""
usage="usage: $0 [--out DIR] [--train-limit N] [--epochs N] [--threads N] [--only NAME,NAME]"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --train-limit) train_limit=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done

configs=(
  "seed-b256      --preset seed --batch-size 256"
  "seed-b128      --preset seed --batch-size 128"
  "seed-b64       --preset seed --batch-size 64"
  "seed-b128-lr2e-3 --preset seed --batch-size 128 --lr 0.002"
  "seed-b128-decay0.9 --preset seed --batch-size 128 --lr-decay 0.9"
  "paper-b128     --preset paper --batch-size 128"
)

[[ -f build/cpu/build.ninja ]] || cmake --preset cpu >/dev/null
cmake --build build/cpu --target capsnet >/dev/null
mkdir -p "$out"
runs=()
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; $train_limit training images, $epochs epochs, validation on the 5,000 held-out images"
echo
header="| configuration |"; rule="|---|"
for ((e = 1; e <= epochs; e++)); do header+=" val. acc. epoch $e |"; rule+="---:|"; done
echo "$header img/s |"; echo "$rule---:|"
for entry in "${configs[@]}"; do
  read -r name options <<<"$entry"
  if [[ -n $only && ",$only," != *",$name,"* ]]; then continue; fi
  dir="$out/$name"
  rm -rf "$dir"
  # shellcheck disable=SC2086
  build/cpu/capsnet train $options --train-limit "$train_limit" --epochs "$epochs" --test-limit 0 \
    --threads "$threads" --save "$dir" > "$dir.out" 2>&1 || { echo "| $name | failed, see $dir.out |"; continue; }
  runs+=("$dir")
  row="| $name ($options) |"
  while IFS=, read -r epoch lr margin recon loss train val test seconds rate; do
    [[ $epoch == epoch ]] && continue
    row+=" $(awk -v v="$val" 'BEGIN { printf "%.2f%%", 100 * v }') |"
    last_rate=$rate
  done < "$dir/log.csv"
  echo "$row $last_rate |"
done
if ((${#runs[@]})); then
  build/cpu/capsnet plot --run "$(IFS=,; echo "${runs[*]}")" --out "$out/study.png" >/dev/null
  echo; echo "curves: $out/study.png"
fi
