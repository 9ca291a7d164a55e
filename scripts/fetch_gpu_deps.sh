#!/usr/bin/env bash
# Fills .deps/ (git-ignored) with what bench/gpu.sh needs on a GPU machine that holds only the checkout,
# no network and none of the project's Debian packages:
#   .deps/*.deb        the packages the native build includes and links, from `apt-get download` (gpu.sh
#                      unpacks them without root into build/gpu-deps/ and builds against that prefix)
#   .deps/mnist/*.gz   the four MNIST IDX files gzipped (from data/mnist; scripts/fetch_mnist.sh fills it)
# Run it here, on a Debian 12 dev machine with network. Then carry exactly one path to the GPU machine:
#   .deps
# (the device tool's `carry: [".deps"]`; it travels with the ~8 MB checkout, 64 MiB in all). This script
# prints the total and fails above 48 MiB. The libraries are Debian 12's builds: they need glibc 2.34 or
# newer there (Ubuntu 22.04 and later have it).
#   scripts/fetch_gpu_deps.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

max_mib=48
packages=(
  libxtensor-dev xtl-dev libxsimd-dev         # the core's tensor library and its SIMD layer (headers)
  catch2                                      # the tests (v2, one header)
  nlohmann-json3-dev                          # safetensors (headers)
  libstb-dev libstb0                          # PNG writing (headers; libstb0 only because -dev depends on it)
  libopenblas-dev libopenblas0                # the native GEMM: metapackages ...
  libopenblas-pthread-dev libopenblas0-pthread  # ... and the pthread variant they select
  libgfortran5 libquadmath0                   # libopenblas.so.0's own dependencies at run time
)
# Dependencies every glibc system with a C++ compiler already has (nvcc needs one).
base_system=(libc6 libgcc-s1 libstdc++6 gcc-12-base)
mnist=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

die() { echo "fetch_gpu_deps.sh: error: $*" >&2; exit 1; }
if ! command -v apt-get >/dev/null || ! command -v apt-cache >/dev/null; then
  die "needs apt-get and apt-cache (a Debian machine)"
fi

# --- Nothing else needed? ---------------------------------------------------------------------------
# apt-cache depends marks alternatives with '|' (A | B | C): a group is met when one member is here.
unmet=$(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances \
          "${packages[@]}" | awk -v have="${packages[*]} ${base_system[*]}" '
  BEGIN { n = split(have, list, " "); for (i = 1; i <= n; i++) ok[list[i]] = 1 }
  /^[^ ]/ { package = $1; next }
  /Depends:/ {
    name = $2; gsub(/[<>]/, "", name)
    group = group (group == "" ? "" : " | ") name
    if (name in ok) met = 1
    if ($1 ~ /^\|/) next               # more alternatives follow
    if (!met) print package " needs " group
    group = ""; met = 0
  }')
[[ -z $unmet ]] || die "a dependency is not in the list (add it to packages=() above):"$'\n'"$unmet"

# --- Debian packages --------------------------------------------------------------------------------
mkdir -p .deps/mnist
download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
echo "fetch_gpu_deps.sh: apt-get download ${#packages[*]} packages"
# Sandbox user root: apt's _apt user may not write into a temp folder of root's.
(cd "$download" && apt-get download -q -o APT::Sandbox::User=root "${packages[@]}" >/dev/null) ||
  die "apt-get download failed (is the package index there? run apt-get update)"
rm -f .deps/*.deb                   # an older version of a package would be unpacked beside the new one
mv "$download"/*.deb .deps/
for deb in .deps/*.deb; do dpkg-deb --info "$deb" >/dev/null || die "$deb is not a valid package"; done

# --- MNIST, gzipped ---------------------------------------------------------------------------------
[[ -f data/mnist/${mnist[0]} ]] || scripts/fetch_mnist.sh
for name in "${mnist[@]}"; do
  raw=data/mnist/$name gz=.deps/mnist/$name.gz
  [[ -f $raw ]] || die "$raw is missing (scripts/fetch_mnist.sh)"
  if [[ ! -f $gz || $raw -nt $gz ]]; then
    gzip -9 -n -c "$raw" >"$gz.tmp" && mv "$gz.tmp" "$gz"
  fi
  # The copy must unpack to the same bytes: compare sizes here, gpu.sh checks them against the IDX header.
  unpacked=$(gzip -dc "$gz" | wc -c)
  [[ $unpacked -eq $(stat -c %s "$raw") ]] || die "$gz unpacks to $unpacked bytes, $raw has $(stat -c %s "$raw")"
done

# --- Size -------------------------------------------------------------------------------------------
debs=(.deps/*.deb)
bytes=$(du -sb .deps | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "fetch_gpu_deps.sh: .deps holds ${#debs[*]} packages and ${#mnist[*]} MNIST files: $mib MiB" \
     "(debs $(du -cb "${debs[@]}" | tail -1 | awk '{ printf "%.1f", $1 / 1048576 }') MiB," \
     "MNIST $(du -sb .deps/mnist | awk '{ printf "%.1f", $1 / 1048576 }') MiB)"
((bytes <= max_mib * 1048576)) || die ".deps is $mib MiB, over the $max_mib MiB that fit beside the checkout in 64 MiB"
echo "fetch_gpu_deps.sh: carry .deps to the GPU machine, then run bench/gpu.sh there"
