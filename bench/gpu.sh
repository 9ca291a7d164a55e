#!/usr/bin/env bash
# Everything for a GPU machine in one run, inside a time budget (default 10 minutes):
#   1. a GPU must be visible (nvidia-smi -L), else exit 3 at once, before anything is built;
#   2. build the CUDA backend for the GPU present (build/gpu) against the Debian packages in .deps/;
#   3. the CUDA tests (every kernel and the whole training step against the CPU core): each must pass,
#      a skip fails too; compute-sanitizer memcheck and racecheck over the kernel tests;
#   4. training images/s of our CUDA backend beside the same CapsNet in PyTorch on the same GPU (float32
#      without TF32, batch 128, best of a few alternating runs), and the floor that the GPU's measured
#      float32 matrix throughput puts under a step;
#   5. train the seed preset with the time left, evaluate its best epoch, export it as int8.
# Everything lands in one folder (--out): gpu.log (every phase's full output), results.json, the run
# (log.csv, curves.png, checkpoint/model/best.safetensors) and capsnet-seed-i8.safetensors.
#
#   bench/gpu.sh [--out DIR] [--minutes N] [--skip-tests] [--skip-train] ...   (--help lists them all)
# The budget is the whole run's: each phase checks what is left, training gets the rest minus a minute.
# Under a hard wall-clock limit, give it a little less (--minutes 9.5 under 10 minutes).
#
# The GPU machine needs the checkout and .deps/ only: no root, no network, nothing written outside the
# repository and --out. Fill .deps on a dev machine with scripts/fetch_gpu_deps.sh and carry it along.
# Never run on a GPU yet: tests/test_gpu_script.sh checks only the no-GPU exits.
set -euo pipefail
# Builtins only until the GPU check: tests/test_gpu_script.sh runs this with an empty PATH.
caller_dir=$PWD script_dir=.
[[ $0 != */* ]] || script_dir=${0%/*}
cd "$script_dir/.."

usage="usage: bench/gpu.sh [options]
  --out DIR         output folder [default: \$OUT when set, else build/gpu-run]; a run/ already
                    there is moved to run.previous
  --minutes N       time budget of the whole run, in minutes [default: 10]
  --arch LIST       CMAKE_CUDA_ARCHITECTURES [default: native, only the GPU present: the fast build]
  --batch-size N    batch of the speed comparison [default: 128]
  --steps N         timed steps per speed run [default: 20]
  --repeats N       alternating speed runs per preset, the best counts [default: 3]
  --skip-tests      no CUDA tests and no compute-sanitizer
  --skip-train      no training, evaluation or export
  -h, --help        this help
Exit status: 0 all passed, 1 a phase failed (see the summary), 2 bad usage, 3 no GPU visible."
out="" minutes=10 arch=native batch=128 steps=20 repeats=3 run_tests=1 run_train=1
need_value() { [[ $# -ge 2 && -n $2 ]] || { printf 'gpu.sh: %s needs a value\n%s\n' "$1" "$usage" >&2; exit 2; }; }
need_count() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { printf 'gpu.sh: %s: %s is not a positive integer\n' "$1" "$2" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) need_value "$@"; out=$2; shift 2 ;;
    --minutes) need_value "$@"; minutes=$2; shift 2
      [[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || { printf 'gpu.sh: --minutes: %s is not a number\n' "$minutes" >&2; exit 2; } ;;
    --arch) need_value "$@"; arch=$2; shift 2 ;;
    --batch-size) need_value "$@"; need_count "$1" "$2"; batch=$2; shift 2 ;;
    --steps) need_value "$@"; need_count "$1" "$2"; steps=$2; shift 2 ;;
    --repeats) need_value "$@"; need_count "$1" "$2"; repeats=$2; shift 2 ;;
    --skip-tests) run_tests=0; shift ;;
    --skip-train) run_train=0; shift ;;
    -h|--help) printf '%s\n' "$usage"; exit 0 ;;
    *) printf 'gpu.sh: unknown option %s\n%s\n' "$1" "$usage" >&2; exit 2 ;;
  esac
done

# --- 1. A GPU, before anything else ------------------------------------------------------------------
no_gpu() { printf 'gpu.sh: no GPU: %s\n' "$1" >&2; exit 3; }
command -v nvidia-smi >/dev/null || no_gpu "nvidia-smi is not on PATH (no NVIDIA driver installed here?)"
smi_status=0
gpu_list=$(nvidia-smi -L 2>&1) || smi_status=$?
[[ $smi_status -eq 0 ]] ||
  no_gpu "nvidia-smi -L failed with exit $smi_status (NVIDIA driver not loaded, or no GPU): ${gpu_list:-no message}"
[[ $gpu_list =~ (^|$'\n')GPU\ [0-9]+: ]] || no_gpu "nvidia-smi -L lists no GPU; it printed: ${gpu_list:-nothing}"

# --- The budget, the output folder, the log -----------------------------------------------------------
budget_s=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
left() { echo $((budget_s - SECONDS)); }  # SECONDS: bash's clock since the script started
# A phase's time limit: what is left minus the $1 seconds kept for the phases after it (at least 10 s).
limit_keeping() { local s=$(($(left) - $1)); echo $((s < 10 ? 10 : s)); }
limit_at_most() { local s; s=$(limit_keeping "$2"); echo $((s < $1 ? s : $1)); }  # MAX KEEP
repo=$(pwd)
if [[ -n $out ]]; then
  [[ $out == /* ]] || out=$caller_dir/$out
else
  out=${OUT:-$repo/build/gpu-run}
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
build=$repo/build/gpu logs=$repo/build/gpu/logs
rm -rf "$logs" && mkdir -p "$logs"  # this run's only
log=$out/gpu.log
: >"$log"
say() { printf '%s\n' "$*" | tee -a "$log"; }
python=${PYTHON:-python3}  # the GPU image's python3 is the one with a CUDA PyTorch

# Each phase: its full output in build/gpu/logs/NAME.log and appended to gpu.log; its status returned.
# It runs in the background so that a signal reaches the trap below at once, not after the phase.
running_pid="" running_name=""
run_logged() {
  local name=$1 status=0
  shift
  "$@" >"$logs/$name.log" 2>&1 &
  running_pid=$! running_name=$name
  wait "$running_pid" || status=$?
  running_pid=""
  { printf '===== %s (exit %d): %s\n' "$name" "$status" "$*"; cat "$logs/$name.log"; } >>"$log"
  return "$status"
}
show_tail() { tail -n "${2:-30}" "$logs/$1.log"; }

# What results.json and the summary report, filled in as the phases run (in that order).
declare -A result phase_seconds
result_order=() phase_order=() failures=()
record() { [[ -v "result[$1]" ]] || result_order+=("$1"); result[$1]=$2; }
phase_begin() { phase_name=$1; phase_start=$SECONDS; phase_order+=("$1"); }
phase_end() { phase_seconds[$phase_name]=$((SECONDS - phase_start)); record "$phase_name" "$1"; }
fail() { failures+=("$1"); say "gpu.sh: FAILED: $1"; }
# How a phase that exited with status $1 ended: timeout's 124 (137 after its KILL) means the budget.
ended() { case $1 in 124 | 137) echo "timed out (budget)" ;; *) echo "failed (exit $1)" ;; esac; }

gpu_info=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || true)
gpu_name=${gpu_info%%,*}
driver=$(cut -d, -f2 <<<"$gpu_info" | tr -d ' ')
say "gpu.sh: $gpu_info; budget ${minutes} min; output $out"

json_escape() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '%s' "${s//[$'\t\n\r']/ }"; }
json_value() { if [[ $1 =~ ^-?[0-9]+([.][0-9]+)?$ ]]; then printf '%s' "$1"; else printf '"%s"' "$(json_escape "$1")"; fi; }
write_results() {
  local key first=1
  {
    printf '{\n  "gpu": "%s",\n  "driver": "%s",\n  "torch": %s,\n  "budget_minutes": %s,\n  "wall_seconds": %d,\n' \
      "$(json_escape "$gpu_name")" "$(json_escape "$driver")" \
      "$([[ -n ${torch_version:-} ]] && json_value "$torch_version" || echo null)" "$minutes" "$SECONDS"
    printf '  "passed": %s,\n  "failures": [' "$([[ ${#failures[@]} -eq 0 ]] && echo true || echo false)"
    for key in "${failures[@]}"; do printf '%s%s' "$([[ $first -eq 1 ]] || echo ', ')" "$(json_value "$key")"; first=0; done
    printf '],\n  "results": {'
    first=1
    for key in "${result_order[@]}"; do
      printf '%s\n    "%s": %s' "$([[ $first -eq 1 ]] || echo ,)" "$(json_escape "$key")" "$(json_value "${result[$key]}")"
      first=0
    done
    printf '\n  },\n  "phase_seconds": {'
    first=1
    for key in "${phase_order[@]}"; do
      printf '%s\n    "%s": %s' "$([[ $first -eq 1 ]] || echo ,)" "$key" "${phase_seconds[$key]:-null}"
      first=0
    done
    printf '\n  }\n}\n'
  } >"$out/results.json"
}

# The short table the caller sees last (a remote tool may return only the end of the output).
summary() {
  local status=$? name
  write_results
  say ""
  say "== bench/gpu.sh summary: $gpu_name, driver $driver, torch ${torch_version:-none}, ${SECONDS} s of $budget_s =="
  say "| phase | result | s |"
  say "|---|---|---:|"
  for name in "${phase_order[@]}"; do say "| $name | ${result[$name]:-not finished} | ${phase_seconds[$name]:-?} |"; done
  [[ -z ${speed_table:-} ]] || { say ""; say "$speed_table"; }
  say ""
  say "output: $out: $(cd "$out" && echo *)"
  if [[ ${#failures[@]} -eq 0 && $status -eq 0 ]]; then
    say "RESULT: PASS"
  else
    say "RESULT: FAIL: ${failures[*]:-the script stopped with exit $status}"
    [[ $status -ne 0 ]] || status=1
  fi
  exit "$status"
}
trap summary EXIT
# On Ctrl-C or SIGTERM: stop the running phase the same way (capsnet train then checkpoints; timeout
# passes the signal on), then the summary and results.json as usual.
on_signal() {
  if [[ -n $running_pid ]]; then
    kill -TERM "$running_pid" 2>/dev/null || true
    wait "$running_pid" || true
    { printf '===== %s (stopped by a signal)\n' "$running_name"; cat "$logs/$running_name.log"; } >>"$log"
  fi
  fail "stopped by a signal"
  exit 143
}
trap on_signal TERM INT

# --- 2. Tools, dependencies, data, build ---------------------------------------------------------------
phase_begin setup
nvcc=/usr/local/cuda/bin/nvcc
[[ -x $nvcc ]] || nvcc=$(command -v nvcc || true)
[[ -n $nvcc ]] || { fail "no nvcc (neither /usr/local/cuda/bin/nvcc nor one on PATH)"; exit 1; }
cuda_bin=$(dirname "$nvcc")
# pip's cmake and ninja put their programs on PATH, or at least in their Python modules.
for tool in cmake ninja; do
  command -v "$tool" >/dev/null && continue
  dir=$("$python" -c "import $tool, os; print(getattr($tool, 'CMAKE_BIN_DIR', None) or $tool.BIN_DIR)" 2>/dev/null || true)
  if [[ -n $dir && -x $dir/$tool ]]; then PATH=$dir:$PATH; fi
done
command -v cmake >/dev/null || { fail "no cmake on PATH (nor in $python's cmake module)"; exit 1; }
cmake_version=$(cmake --version | sed -n 's/^cmake version \([0-9]*\.[0-9]*\).*/\1/p')
cmake_major=${cmake_version%%.*} cmake_minor=${cmake_version#*.}
if ((cmake_major < 3 || (cmake_major == 3 && cmake_minor < 20))); then
  fail "cmake $cmake_version is older than the 3.20 this project needs"; exit 1
fi
generator=(-G Ninja)
command -v ninja >/dev/null || { generator=(-G "Unix Makefiles"); say "gpu.sh: no ninja: using make"; }
command -v c++ >/dev/null || command -v g++ >/dev/null || { fail "no C++ compiler (c++ or g++): nvcc needs one"; exit 1; }
if [[ $arch == native ]] && ((cmake_major == 3 && cmake_minor < 24)); then
  # CMAKE_CUDA_ARCHITECTURES=native came with CMake 3.24: name the GPU's compute capability instead.
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')
  say "gpu.sh: cmake $cmake_version has no 'native' CUDA architecture: using $arch"
fi

# The Debian packages, unpacked without root (dpkg-deb, or ar + tar where dpkg is missing).
deps_prefix="" with_deps=(env)  # "${with_deps[@]}" PROGRAM: runs one of our programs
debs=(.deps/*.deb)
if [[ -f ${debs[0]} ]]; then
  deps_prefix=$repo/build/gpu-deps
  stamp=$(stat -c '%n %s %Y' "${debs[@]}" | md5sum | cut -d' ' -f1)
  if [[ $(cat "$deps_prefix/.unpacked" 2>/dev/null) != "$stamp" ]]; then
    rm -rf "$deps_prefix" && mkdir -p "$deps_prefix"
    for deb in "${debs[@]}"; do
      if command -v dpkg-deb >/dev/null; then
        dpkg-deb -x "$deb" "$deps_prefix"
      else
        member=$(ar t "$deb" | grep '^data\.tar')
        case $member in
          *.xz) ar p "$deb" "$member" | tar -xJ -C "$deps_prefix" ;;
          *.zst) ar p "$deb" "$member" | tar --zstd -x -C "$deps_prefix" ;;
          *.gz) ar p "$deb" "$member" | tar -xz -C "$deps_prefix" ;;
          *) ar p "$deb" "$member" | tar -x -C "$deps_prefix" ;;
        esac
      fi || { fail "cannot unpack $deb"; exit 1; }
    done
    echo "$stamp" >"$deps_prefix/.unpacked"
  fi
  # Our programs find libopenblas through their RUNPATH, but its libgfortran only through this. Only
  # ours get it: PyTorch and numpy bring their own libraries.
  multiarch=$deps_prefix/usr/lib/x86_64-linux-gnu
  with_deps+=("LD_LIBRARY_PATH=$multiarch/openblas-pthread:$multiarch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
elif [[ ! -f /usr/include/xtensor/xtensor.hpp ]]; then
  fail "no .deps/*.deb and no system xtensor: run scripts/fetch_gpu_deps.sh on a dev machine and carry .deps"
  exit 1
fi

# MNIST: data/mnist when it is there, else .deps/mnist/*.gz unpacked into build/gpu-data.
mnist_names=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
idx_size_ok() {  # the file is as long as its IDX header says (magic 0x801: labels, 0x803: images)
  local -a header
  [[ -f $1 ]] || return 1
  read -r -a header < <(od -An -N16 --endian=big -tu4 "$1")
  local expected
  case ${header[0]} in
    2049) expected=$((8 + header[1])) ;;
    2051) expected=$((16 + header[1] * header[2] * header[3])) ;;
    *) return 1 ;;
  esac
  [[ $(stat -c %s "$1") -eq $expected ]]
}
mnist_ok() { local name; for name in "${mnist_names[@]}"; do idx_size_ok "$1/$name" || return 1; done; }
data=$repo/data/mnist
if ! mnist_ok "$data"; then
  data=$repo/build/gpu-data
  mkdir -p "$data"
  for name in "${mnist_names[@]}"; do
    idx_size_ok "$data/$name" && continue
    [[ -f .deps/mnist/$name.gz ]] && gzip -dc ".deps/mnist/$name.gz" >"$data/$name.tmp" && mv "$data/$name.tmp" "$data/$name"
  done
  mnist_ok "$data" || { fail "no MNIST: neither data/mnist nor .deps/mnist/*.gz (scripts/fetch_gpu_deps.sh)"; exit 1; }
fi
phase_end "cmake $cmake_version, nvcc $("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), arch $arch"

phase_begin build
cuda_targets=(test_cuda_device test_cuda_layers test_cuda_capsules test_cuda_backend)
say "gpu.sh: configuring and building build/gpu (logs: build/gpu/logs/configure.log, build.log)"
configure=(cmake -S "$repo" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCAPSNET_CUDA=ON
           -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$arch" -DCAPSNET_DEPS_PREFIX="$deps_prefix")
status=0
run_logged configure timeout "$(limit_keeping 60)" "${configure[@]}" || status=$?
if [[ $status -ne 0 ]]; then
  show_tail configure 40; phase_end "configure $(ended $status)"; fail "configure (build/gpu/logs/configure.log)"; exit 1
fi
run_logged build timeout "$(limit_keeping 60)" cmake --build "$build" -j "$(nproc)" --target capsnet train_speed \
  "${cuda_targets[@]}" || status=$?
if [[ $status -ne 0 ]]; then
  show_tail build 40; phase_end "$(ended $status)"; fail "build (build/gpu/logs/build.log)"; exit 1
fi
grep -i "warning" "$logs/build.log" | head -10 || true
phase_end "ok: capsnet train_speed ${cuda_targets[*]}"

# --- 3. Tests and compute-sanitizer ---------------------------------------------------------------------
if [[ $run_tests -eq 1 ]]; then
  phase_begin tests
  say "gpu.sh: ctest -L cuda (log: $logs/tests.log)"
  run_logged tests timeout "$(limit_keeping 30)" "${with_deps[@]}" ctest --test-dir "$build" -L cuda --output-on-failure \
    --timeout 300 || true
  # ctest counts exit 77 (no GPU seen) as skipped and still exits 0: count each outcome from its lines.
  # A test ctest lists but whose program was not built here shows as Not Run: a failure too.
  ran=$(grep -cE 'Test +#[0-9]+: ' "$logs/tests.log" || true)
  passed=$(grep -cE 'Test +#[0-9]+: .* Passed' "$logs/tests.log" || true)
  skipped=$(grep -cE 'Test +#[0-9]+: .*\*\*\*Skipped' "$logs/tests.log" || true)
  failed=$((ran - passed - skipped))
  record tests_passed "$passed"; record tests_failed "$failed"; record tests_skipped "$skipped"
  phase_end "$passed passed, $failed failed, $skipped skipped"
  if [[ $ran -eq 0 || $passed -ne $ran ]]; then
    show_tail tests 60
    fail "CUDA tests: $passed of $ran passed, $failed failed, $skipped skipped (a skip on a GPU machine is a failure)"
  fi

  sanitizer=$(command -v compute-sanitizer || true)
  for candidate in "$cuda_bin/compute-sanitizer" "$cuda_bin/../compute-sanitizer/compute-sanitizer"; do
    [[ -n $sanitizer || ! -x $candidate ]] || sanitizer=$candidate
  done
  for tool in memcheck racecheck; do
    for kernel_test in test_cuda_layers test_cuda_capsules; do
      name="$tool $kernel_test"
      phase_begin "$name"
      # Up to a minute a run, keeping ~2.5 minutes for the speed comparison and some training.
      limit=$(( $(left) - 150 < 60 ? $(left) - 150 : 60 ))
      if [[ -z $sanitizer ]]; then phase_end "skipped: no compute-sanitizer"; continue; fi
      if ((limit < 15)); then phase_end "skipped: the budget is short"; say "gpu.sh: $name skipped (budget)"; continue; fi
      status=0
      run_logged "${tool}_$kernel_test" timeout -k 10 "$limit" "${with_deps[@]}" "$sanitizer" --tool "$tool" \
        --error-exitcode 86 "$build/tests/$kernel_test" || status=$?
      unsupported='device (is )?not supported|not supported on this|unsupported (device|gpu)'
      if grep -Eiq "$unsupported" "$logs/${tool}_$kernel_test.log"; then
        phase_end "device not supported by compute-sanitizer here: not checked"
        say "gpu.sh: compute-sanitizer says this device is not supported: $name not checked"
      elif [[ $status -eq 0 ]]; then
        phase_end "ok: $(grep -Eo '(ERROR|RACECHECK) SUMMARY: .*' "$logs/${tool}_$kernel_test.log" | tail -1)"
      elif [[ $status -eq 124 || $status -eq 137 ]]; then
        phase_end "timed out after $limit s: not checked to the end"
        say "gpu.sh: $name ran past $limit s: not checked to the end"
      elif [[ $status -eq 77 ]]; then
        phase_end "the test saw no GPU under the sanitizer: not checked"
      else
        phase_end "errors (exit $status)"
        show_tail "${tool}_$kernel_test" 40
        fail "$name (build/gpu/logs/${tool}_$kernel_test.log)"
      fi
    done
  done
fi

# --- 4. Speed beside PyTorch, and the floor -----------------------------------------------------------
phase_begin speed
torch_version=""
if timeout 120 "$python" -c "import numpy, torch; assert torch.cuda.is_available()" >>"$log" 2>&1; then
  torch_version=$("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null)
else
  say "gpu.sh: PyTorch not importable (or it sees no CUDA device): our numbers only"
fi
images_per_second() { sed -n 's/.*"images_per_second": *\([0-9.]*\).*/\1/p' | tail -1; }
best() { sort -g | tail -1; }
whole() { if [[ $1 == - ]]; then echo -; else printf '%.0f' "$1"; fi; }
speed_table="batch $batch, $steps timed steps after 3 warm-up steps, best of $repeats alternating runs; float32, TF32 off
| preset | ours img/s | PyTorch img/s | ratio |
|---|---:|---:|---:|"
for preset in seed paper; do
  ours_rates=() theirs_rates=()
  for ((r = 0; r < repeats; r++)); do
    ((r == 0 || $(left) > 150)) || { say "gpu.sh: speed: $preset after $r runs (budget)"; break; }
    if run_logged "speed_ours_${preset}_$r" timeout 120 "${with_deps[@]}" "$build/bench/train_speed" --device cuda \
         --preset "$preset" --batch-size "$batch" --steps "$steps" --warmup 3; then
      ours_rates+=("$(images_per_second <"$logs/speed_ours_${preset}_$r.log")")
    else
      show_tail "speed_ours_${preset}_$r" 10; fail "train_speed --preset $preset"
    fi
    [[ -n $torch_version ]] || continue
    if run_logged "speed_pytorch_${preset}_$r" timeout 120 "$python" bench/pytorch_capsnet.py train-speed --device cuda \
         --preset "$preset" --batch-size "$batch" --steps "$steps" --warmup 3; then
      theirs_rates+=("$(images_per_second <"$logs/speed_pytorch_${preset}_$r.log")")
    else
      show_tail "speed_pytorch_${preset}_$r" 10; say "gpu.sh: the PyTorch run of $preset failed (see gpu.log)"
    fi
  done
  a=$( ((${#ours_rates[@]})) && printf '%s\n' "${ours_rates[@]}" | best || echo -)
  b=$( ((${#theirs_rates[@]})) && printf '%s\n' "${theirs_rates[@]}" | best || echo -)
  ratio=$([[ $a != - && $b != - ]] && awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2fx", a / b }' || echo -)
  speed_table+=$'\n'"| $preset | $(whole "$a") | $(whole "$b") | $ratio |"
  record "speed_${preset}_ours_images_per_second" "$a"; record "speed_${preset}_pytorch_images_per_second" "$b"
done
# The floor: FLOPs of one training image (forward x 3, from the layer shapes) at the GPU's measured
# float32 matrix-product rate; no float32 implementation of this model can train faster.
if [[ -n $torch_version ]] && run_logged floor timeout 120 "$python" bench/pytorch_capsnet.py gpu-floor; then
  floor=$(tail -1 "$logs/floor.log")
  field() { "$python" -c $'import json, sys\nd = json.load(sys.stdin)\nfor k in sys.argv[1:]: d = d[k]\nprint(d)' "$@"; }
  speed_table+=$'\n\n'"float32 matmul ($(field matmul <<<"$floor"), TF32 off): $(field tflops <<<"$floor") TFLOP/s"
  record floor_tflops "$(field tflops <<<"$floor")"
  for preset in seed paper; do
    speed_table+=$'\n'$(printf 'floor (%s, %.3f GFLOP/image): %s us/image = %.0f img/s max' "$preset" \
      "$(awk -v f="$(field "$preset" flops_per_image <<<"$floor")" 'BEGIN { print f / 1e9 }')" \
      "$(field "$preset" us_per_image <<<"$floor")" "$(field "$preset" images_per_second_max <<<"$floor")")
    record "floor_${preset}_images_per_second_max" "$(field "$preset" images_per_second_max <<<"$floor")"
  done
else
  speed_table+=$'\n\n'"floor: not measured (it times PyTorch's float32 matmul)"
fi
printf '\n%s\n' "$speed_table" >>"$log"  # the summary shows it too
phase_end "ours: seed $(whole "${result[speed_seed_ours_images_per_second]}") img/s, paper $(
  whole "${result[speed_paper_ours_images_per_second]}") img/s"

# --- 5. Train the seed preset with the time left, evaluate, export ---------------------------------------
if [[ $run_train -eq 1 ]]; then
  phase_begin train
  # About a minute stays for the last epoch's scoring, the evaluation, the export and this summary.
  train_minutes=$(awk -v s="$(($(left) - 60))" 'BEGIN { printf "%.2f", s / 60 }')
  if awk -v m="$train_minutes" 'BEGIN { exit !(m < 0.5) }'; then
    phase_end "skipped: $(left) s left"
    say "gpu.sh: training skipped: only $(left) s of the budget left"
  else
    if [[ -e $out/run ]]; then  # capsnet train will not overwrite a run
      rm -rf "$out/run.previous" && mv "$out/run" "$out/run.previous"
      say "gpu.sh: moved the last run to $out/run.previous"
    fi
    say "gpu.sh: training the seed preset for $train_minutes min (log: $logs/train.log)"
    status=0
    # timeout: a last guard; its SIGTERM makes capsnet checkpoint and exit.
    run_logged train timeout -k 20 "$(limit_keeping 20)" "${with_deps[@]}" "$build/capsnet" train --device cuda \
      --preset seed --epochs 100 --stop-after-minutes "$train_minutes" --save "$out/run" --data "$data" \
      --checkpoint-minutes 2 || status=$?
    grep -E '^epoch [0-9]+/[0-9]+  loss' "$logs/train.log" | tail -5 || true
    # log.csv: a header, then epoch, ..., validation_accuracy (7th), ..., images_per_second (10th).
    # The best epoch is the first with the highest validation accuracy, as train picks best.safetensors.
    epochs=0 best=""
    if [[ -f $out/run/log.csv ]]; then
      epochs=$(($(wc -l <"$out/run/log.csv") - 1))
      best=$(awk -F, 'NR == 2 || (NR > 2 && $7 > top) { top = $7; epoch = $1 }
                      END { if (epoch) printf "%d %.2f %.0f", epoch, 100 * top, $10 }' "$out/run/log.csv")
    fi
    record epochs_trained "$epochs"
    if [[ -n $best ]]; then
      read -r best_epoch best_validation last_rate <<<"$best"
      record best_epoch "$best_epoch"
      record best_validation_accuracy_percent "$best_validation"
      record train_images_per_second "$last_rate"
    fi
    if [[ $status -ne 0 ]]; then
      show_tail train 20; phase_end "$(ended $status) after $epochs epochs"; fail "training (build/gpu/logs/train.log)"
    else
      phase_end "$epochs epochs, best validation ${best_validation:--}% (epoch ${best_epoch:--}), ${last_rate:--} img/s"
    fi

    phase_begin eval
    if [[ ! -f $out/run/best.safetensors ]]; then
      phase_end "skipped: no epoch finished, so no best.safetensors"
    elif run_logged eval timeout "$(limit_at_most 120 5)" "${with_deps[@]}" "$build/capsnet" eval \
           --model "$out/run/best.safetensors" --data "$data" --device cuda; then
      record test_accuracy_percent "$(sed -n 's/^accuracy *\([0-9.]*\)%.*/\1/p' "$logs/eval.log")"
      phase_end "test accuracy ${result[test_accuracy_percent]}% of best.safetensors"
    else
      show_tail eval 20; phase_end "failed"; fail "capsnet eval"
    fi

    phase_begin export
    if [[ ! -f $out/run/best.safetensors ]]; then
      phase_end "skipped: no best.safetensors"
    elif run_logged export timeout "$(limit_at_most 120 3)" "${with_deps[@]}" "$build/capsnet" export \
           --model "$out/run/best.safetensors" --dtype i8 --out "$out/capsnet-seed-i8.safetensors" --data "$data" \
           --device cuda; then
      record i8_test_accuracy_percent "$(sed -n 's/.* i8 \([0-9.]*\)%.*/\1/p' "$logs/export.log")"
      phase_end "$(grep -o 'source [0-9.]*%.*' "$logs/export.log" | head -1)"
    else
      show_tail export 20; phase_end "failed"; fail "capsnet export"
    fi
  fi
fi
