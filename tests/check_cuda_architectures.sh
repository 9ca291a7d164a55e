#!/usr/bin/env bash
# Checks that a CUDA build carries GPU code for exactly the architectures its CMAKE_CUDA_ARCHITECTURES
# names: machine code (SASS) for each "NN-real", PTX for each "NN-virtual" (a plain "NN" is both).
#   tests/check_cuda_architectures.sh BUILD_DIR
# Reads the list from BUILD_DIR/CMakeCache.txt and the fat binaries embedded in the kernels' library
# (BUILD_DIR/native/cuda/libcapsnet_cuda.a). No GPU and no cuobjdump needed (this toolkit has none): the
# fat binary's own headers are read (magic 0xBA55ED50, then one entry per image: kind 1 = PTX, 2 = ELF
# i.e. SASS, and the target's sm number at byte 28 of the entry). Exits 1 naming what is missing.
set -euo pipefail

build=${1:?usage: $0 BUILD_DIR}
cache="$build/CMakeCache.txt"
library="$build/native/cuda/libcapsnet_cuda.a"
[[ -f $cache ]] || { echo "check_cuda_architectures: no $cache" >&2; exit 1; }
[[ -f $library ]] || { echo "check_cuda_architectures: no $library (build the capsnet_cuda target)" >&2; exit 1; }
list=$(sed -n 's/^CMAKE_CUDA_ARCHITECTURES:[A-Z]*=//p' "$cache")
[[ -n $list ]] || { echo "check_cuda_architectures: CMAKE_CUDA_ARCHITECTURES is not set in $cache" >&2; exit 1; }

python3 - "$library" "$list" <<'EOF'
import struct
import sys

library, wanted_list = sys.argv[1], sys.argv[2]
data = open(library, "rb").read()
magic = struct.pack("<I", 0xBA55ED50)
found = set()
position = data.find(magic)
while position >= 0:
    _version, header_size, fat_size = struct.unpack_from("<HHQ", data, position + 4)
    entry, end = position + header_size, position + header_size + fat_size
    while entry + 32 <= end:
        kind, _entry_version, entry_header_size, payload_size = struct.unpack_from("<HHII", data, entry)
        if kind not in (1, 2) or entry_header_size < 32:
            break
        found.add(("PTX" if kind == 1 else "SASS", struct.unpack_from("<I", data, entry + 28)[0]))
        entry += entry_header_size + payload_size
    position = data.find(magic, position + 4)

wanted = set()
for item in wanted_list.split(";"):
    number, _, kind = item.partition("-")
    if kind in ("", "real"):
        wanted.add(("SASS", int(number)))
    if kind in ("", "virtual"):
        wanted.add(("PTX", int(number)))

describe = lambda images: ", ".join(f"{kind} {sm}" for kind, sm in sorted(images)) or "none"
if wanted - found or found - wanted:
    print(f"check_cuda_architectures: {library} holds {describe(found)}; CMAKE_CUDA_ARCHITECTURES={wanted_list} "
          f"asks for {describe(wanted)} (missing: {describe(wanted - found)}; unexpected: {describe(found - wanted)})",
          file=sys.stderr)
    sys.exit(1)
print(f"check_cuda_architectures: {library} holds exactly {describe(found)} ({wanted_list})")
EOF
