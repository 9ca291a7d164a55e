#!/usr/bin/env bash
# Fetches Dear ImGui 1.86's full source from Debian (libimgui-dev ships headers and a native libimgui.a,
# but not the core imgui*.cpp the wasm build must compile). Uses `apt-get source` with a private apt
# configuration so /etc/apt is never edited. Idempotent: does nothing when the tree is already there.
#   scripts/fetch_imgui_source.sh [DEST]   (default: build/third_party/imgui)
set -euo pipefail
repo_root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo_root/build/third_party/imgui}

if [ -f "$dest/imgui.cpp" ] && grep -q 'IMGUI_VERSION *"1.86"' "$dest/imgui.h"; then
  echo "fetch_imgui_source: $dest already holds ImGui 1.86"
  exit 0
fi

work=$(mktemp -d /tmp/capsnet-imgui-src.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/etc/sources.list.d" "$work/lists/partial" "$work/cache/archives/partial" "$work/download"
# The same bookworm mirror the machine's binary packages come from, as a deb-src entry.
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main" \
  > "$work/etc/sources.list.d/src.list"
: > "$work/etc/sources.list"
apt_options=(
  -o "Dir::Etc::SourceList=$work/etc/sources.list"
  -o "Dir::Etc::SourceParts=$work/etc/sources.list.d"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
)
# apt drops privileges to _apt for downloads: the folders it writes must be writable by that user.
chmod -R a+rwx "$work"
apt-get "${apt_options[@]}" update -qq
(cd "$work/download" && apt-get "${apt_options[@]}" source --download-only imgui >/dev/null)
command -v dpkg-source >/dev/null || { echo "fetch_imgui_source: dpkg-source missing (install dpkg-dev)" >&2; exit 1; }
(cd "$work/download" && dpkg-source --no-check -x ./*.dsc tree >/dev/null)
grep -q 'IMGUI_VERSION *"1.86"' "$work/download/tree/imgui.h" \
  || { echo "fetch_imgui_source: Debian's imgui source is not 1.86" >&2; exit 1; }
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
cp -r "$work/download/tree" "$dest"
echo "fetch_imgui_source: ImGui 1.86 source in $dest"
