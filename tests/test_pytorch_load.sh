#!/usr/bin/env bash
# Our model files are PyTorch models: a briefly trained model is loaded by bench/pytorch_capsnet.py into
# the same network written in PyTorch (load_state_dict(strict=True)), and its capsule lengths on 300
# test images must match `capsnet eval`'s. Tolerance: 1e-4 absolute on lengths in [0, 1): the two
# forward passes sum ~10^5 float products in different orders (relative rounding ~1e-6 each), and a
# wrong layout or name would give errors of order 0.1. Exit 77 (skipped) when Debian's torch is absent.
#   tests/test_pytorch_load.sh CAPSNET_BINARY SOURCE_DIR
set -euo pipefail
capsnet=$1 source_dir=$2
python=/usr/bin/python3
if ! "$python" -c 'import torch, numpy' 2>/dev/null; then
  echo "SKIPPED: $python has no torch/numpy (apt-get install python3-torch python3-numpy)"
  exit 77
fi
data=${CAPSNET_DATA_DIR:-$source_dir/data/mnist}
if [[ ! -f $data/t10k-images-idx3-ubyte ]]; then
  if [[ ${CAPSNET_REQUIRE_DATA:-0} == 1 ]]; then echo "MNIST not found in $data" >&2; exit 1; fi
  echo "SKIPPED: MNIST not found in $data (scripts/fetch_mnist.sh)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$capsnet" train --data "$data" --save "$work/run" --train-limit 512 --batch-size 32 --epochs 1 --validation 0 \
  --test-limit 0 --threads 2 > "$work/train.log" 2>&1
for file in model.safetensors model-i8.safetensors; do
  if [[ $file == model-i8.safetensors ]]; then
    "$capsnet" export --model "$work/run/model.safetensors" --dtype i8 --out "$work/run/$file" --limit 0 > /dev/null
  fi
  "$capsnet" eval --model "$work/run/$file" --data "$data" --limit 300 --scores "$work/ours.csv" --threads 2 > /dev/null 2>&1
  "$python" "$source_dir/bench/pytorch_capsnet.py" check-model "$work/run/$file" --mnist "$data" --limit 300 \
    --threads 2 --dump-lengths "$work/theirs.npy"
  "$python" - "$work/ours.csv" "$work/theirs.npy" "$file" <<'PY'
import sys
import numpy as np
ours = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)[:, 3:]
theirs = np.load(sys.argv[2])
assert ours.shape == theirs.shape == (300, 10), (ours.shape, theirs.shape)
error = np.abs(ours - theirs).max()
agree = (ours.argmax(1) == theirs.argmax(1)).mean()
print(f"{sys.argv[3]}: max |length difference| {error:.2e}, predictions agree on {agree:.1%}, "
      f"lengths span [{ours.min():.3f}, {ours.max():.3f}]")
assert error < 1e-4, f"PyTorch and capsnet disagree: max difference {error}"
assert ours.max() - ours.min() > 0.1, "degenerate model: the comparison would prove nothing"
PY
done
