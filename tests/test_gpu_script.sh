#!/usr/bin/env bash
# bench/gpu.sh on a machine without a GPU must stop at once, before building anything, with exit 3 and a
# message naming the problem: (a) no nvidia-smi at all, (b) nvidia-smi failing as it does without a
# device, (c) nvidia-smi listing nothing. Its --help must work anywhere. gpu.sh runs from a copy in a
# temp folder, so "nothing built" means that folder holds nothing but the copy afterwards.
#   tests/test_gpu_script.sh REPO
set -euo pipefail
repo=${1:?usage: tests/test_gpu_script.sh REPO}
bash_path=$(command -v bash)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/repo/bench" "$work/empty" "$work/failing" "$work/silent"
cp "$repo/bench/gpu.sh" "$work/repo/bench/gpu.sh"
printf '#!%s\necho "No devices were found"\nexit 6\n' "$bash_path" >"$work/failing/nvidia-smi"
printf '#!%s\nexit 0\n' "$bash_path" >"$work/silent/nvidia-smi"
chmod +x "$work/failing/nvidia-smi" "$work/silent/nvidia-smi"

failures=0
check() {  # NAME PATH EXPECTED-TEXT...: gpu.sh with only PATH must exit 3 quickly, saying each text
  local name=$1 path=$2 output status=0 start elapsed_ms text
  shift 2
  start=$(date +%s%N)
  # env -i: no OUT, no CUDA variables from the caller; PATH holds at most the fake nvidia-smi.
  output=$(env -i PATH="$path" "$bash_path" "$work/repo/bench/gpu.sh" 2>&1) || status=$?
  elapsed_ms=$((($(date +%s%N) - start) / 1000000))
  local problems=()
  [[ $status -eq 3 ]] || problems+=("exit $status, not 3")
  for text in "$@"; do [[ $output == *"$text"* ]] || problems+=("no '$text' in the message"); done
  ((elapsed_ms < 5000)) || problems+=("took $elapsed_ms ms")
  local left
  left=$(find "$work/repo" -mindepth 1 -maxdepth 1 -printf '%f ')
  [[ $left == "bench " ]] || problems+=("it left files beside bench/: $left")
  if [[ ${#problems[@]} -eq 0 ]]; then
    echo "ok   $name: exit 3 in $elapsed_ms ms: $output"
  else
    echo "FAIL $name: ${problems[*]}"$'\n'"     output: $output"
    failures=$((failures + 1))
  fi
}

check "no nvidia-smi" "$work/empty" "no GPU" "nvidia-smi is not on PATH"
check "nvidia-smi fails" "$work/failing" "no GPU" "exit 6" "No devices were found"
check "nvidia-smi lists nothing" "$work/silent" "no GPU" "lists no GPU"

help_status=0
help=$("$bash_path" "$work/repo/bench/gpu.sh" --help 2>&1) || help_status=$?
if [[ $help_status -eq 0 && $help == *--minutes* && $help == *--skip-train* ]]; then
  echo "ok   --help: exit 0"
else
  echo "FAIL --help: exit $help_status: $help"
  failures=$((failures + 1))
fi
bad_status=0
"$bash_path" "$work/repo/bench/gpu.sh" --no-such-option >/dev/null 2>&1 || bad_status=$?
if [[ $bad_status -eq 2 ]]; then
  echo "ok   unknown option: exit 2"
else
  echo "FAIL unknown option: exit $bad_status"
  failures=$((failures + 1))
fi

[[ $failures -eq 0 ]] || { echo "test_gpu_script: $failures failed"; exit 1; }
echo "test_gpu_script: all passed"
