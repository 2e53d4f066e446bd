#!/usr/bin/env bash
# scripts/cuda-toolchain.sh: fetch the CUDA 11.8 pieces that `make cuda` needs
# into .cuda/ (git-ignored), with no root, no apt sources and no system-wide
# install. See ../shared/specs/cuda-build.md §1 and §6 for the measurements.
#
#   .cuda/usr/include/                     cuda.h and the nvcc device headers
#                                          (nvidia-cuda-dev, first ~1.2 MB of
#                                          the .deb by one HTTP range request)
#   .cuda/usr/lib/nvidia-cuda-toolkit/bin/ nvcc, cicc, a relocatable nvcc.profile
#   .cuda/usr/lib/nvidia-cuda-toolkit/libdevice/libdevice.10.bc
#   .cuda/usr/bin/ptxas                    (PTX validation only)
#   .cuda/stub/libcuda.so                  link stub generated from cuda.h,
#                                          SONAME libcuda.so.1, no NVIDIA code
#   .cuda/.ok                              the pins below; a re-run that finds
#                                          the same pins does nothing
#
# Everything is pinned: the toolkit .deb by its sha256, the headers by a hash
# over the extracted header tree (a partial download has no .deb hash). If
# Debian publishes a new revision, the old files leave the pool and this
# fails loudly (404); update VERSION and both hashes together, then run
# `make ptx` and review the PTX diff.
#
# Needs: curl, xz (xz-utils), ar and readelf (binutils), tar, dd and
# sha256sum (coreutils), gcc and g++ (nvcc runs the host preprocessor even
# for -ptx). Usage: scripts/cuda-toolchain.sh [DIR]   (default: .cuda)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DIR=${1:-.cuda}
MIRROR=${CUDA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
POOL=$MIRROR/pool/non-free/n/nvidia-cuda-toolkit
VERSION='11.8.89~11.8.0-5~deb12u1'
TOOLKIT_SHA256=d1156026e704fe0368b6295db06224ed00a727966fb13454f34e3f3102db0457
# find usr/include -type f | LC_ALL=C sort | xargs sha256sum | sha256sum
HEADERS_SHA256=b7da366360ac79ceca67e6369229d72b5720f41a4241ce8884cc73093934d05a
HEADER_BYTES=1200000 # the first xz block of data.tar.xz holds all of ./usr/include
STUB_REV=1           # bump when the stub recipe changes

PINS="version=$VERSION toolkit=$TOOLKIT_SHA256 headers=$HEADERS_SHA256 stub=$STUB_REV"

if [ -f "$DIR/.ok" ] && [ "$(cat "$DIR/.ok")" = "$PINS" ]; then
	exit 0
fi

# Tools, with the Debian package that provides each.
missing=""
for t in curl:curl xz:xz-utils ar:binutils readelf:binutils tar:tar dd:coreutils \
	sha256sum:coreutils gcc:gcc g++:g++; do
	if ! command -v "${t%%:*}" >/dev/null 2>&1; then
		missing="$missing ${t#*:}"
	fi
done
if [ -n "$missing" ]; then
	echo "cuda-toolchain: missing tools; install them with: apt-get install$(echo "$missing" | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/ $//')" >&2
	exit 1
fi

say() { echo "cuda-toolchain: $*" >&2; }

tmp="$DIR.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

# fetch URL FILE [RANGE]
fetch() {
	local range=()
	if [ -n "${3:-}" ]; then range=(-r "$3"); fi
	if ! curl -sSfL --retry 3 --connect-timeout 20 "${range[@]}" -o "$2" "$1"; then
		say "download failed: $1"
		say "if Debian moved to a new revision, update VERSION and the hashes in $0"
		exit 1
	fi
}

# ar_member FILE NAME: print "OFFSET SIZE" of an ar member (the .deb format),
# reading only the member headers, so it works on a truncated file.
ar_member() {
	local f=$1 want=$2 off=8 total hdr name size
	total=$(stat -c %s "$f")
	[ "$(head -c 8 "$f")" = '!<arch>' ] || { say "$f is not an ar archive"; exit 1; }
	while [ $((off + 60)) -le "$total" ]; do
		hdr=$(dd if="$f" bs=1 skip="$off" count=60 2>/dev/null | tr -d '\0')
		name=$(echo "${hdr:0:16}" | sed 's/[ /]*$//')
		size=$(echo "${hdr:48:10}" | tr -d ' ')
		if [ "$name" = "$want" ]; then
			echo "$((off + 60)) $size"
			return 0
		fi
		off=$((off + 60 + size + (size & 1)))
	done
	say "$f has no member $want"
	exit 1
}

t0=$(date +%s.%N)

# 1. Headers: the start of nvidia-cuda-dev's data.tar.xz.
say "fetching the CUDA headers (first $HEADER_BYTES bytes of nvidia-cuda-dev $VERSION)"
fetch "$POOL/nvidia-cuda-dev_${VERSION}_amd64.deb" "$tmp/dev.part" "0-$((HEADER_BYTES - 1))"
read -r off _ < <(ar_member "$tmp/dev.part" data.tar.xz)
# The stream is cut short on purpose: xz and tar complain about the
# truncated end, which is expected; the hash below is the real check.
tail -c +"$((off + 1))" "$tmp/dev.part" | { xz -dc 2>/dev/null || true; } |
	{ tar -x -C "$tmp" ./usr/include 2>/dev/null || true; }
rm -f "$tmp/dev.part"
if [ ! -f "$tmp/usr/include/cuda.h" ]; then
	say "no usr/include/cuda.h in the first $HEADER_BYTES bytes of nvidia-cuda-dev; the .deb layout changed"
	exit 1
fi
got=$(cd "$tmp" && find usr/include -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [ "$got" != "$HEADERS_SHA256" ]; then
	say "header tree hash mismatch"
	say "  pinned: $HEADERS_SHA256"
	say "  got:    $got"
	exit 1
fi

# 2. Compiler: nvcc, cicc, ptxas and libdevice from nvidia-cuda-toolkit.
say "fetching nvidia-cuda-toolkit $VERSION (84 MB)"
fetch "$POOL/nvidia-cuda-toolkit_${VERSION}_amd64.deb" "$tmp/tk.deb"
got=$(sha256sum "$tmp/tk.deb" | cut -d' ' -f1)
if [ "$got" != "$TOOLKIT_SHA256" ]; then
	say "nvidia-cuda-toolkit sha256 mismatch"
	say "  pinned: $TOOLKIT_SHA256"
	say "  got:    $got"
	exit 1
fi
TK=usr/lib/nvidia-cuda-toolkit
ar p "$tmp/tk.deb" data.tar.xz | xz -dc |
	tar -x -C "$tmp" "./$TK/bin/nvcc" "./$TK/bin/cicc" ./usr/bin/ptxas "./$TK/libdevice"
rm -f "$tmp/tk.deb"
# Debian's nvcc.profile is a symlink to /etc/nvcc.profile with absolute
# paths; this one is relative to the nvcc binary.
cat >"$tmp/$TK/bin/nvcc.profile" <<'EOF'
TOP = $(_HERE_)/../../../..
NVVMIR_LIBRARY_DIR = $(TOP)/usr/lib/nvidia-cuda-toolkit/libdevice
PATH += $(_HERE_):$(TOP)/usr/bin:
INCLUDES += "-I$(TOP)/usr/include" $(_SPACE_)
EOF

# 3. Link stub: one empty function per cu* declaration in cuda.h. The
# preprocessed names are the versioned ones (cuCtxCreate_v2, ...).
mkdir -p "$tmp/stub"
echo '#include <cuda.h>' | gcc -E -P -I"$tmp/usr/include" -x c - |
	grep -oE '\bcu[A-Z][A-Za-z0-9_]* *\(' | tr -d ' (' | LC_ALL=C sort -u |
	awk '{print "void " $1 "(void){}"}' >"$tmp/stub/stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$tmp/stub/libcuda.so" "$tmp/stub/stub.c"
if ! readelf -d "$tmp/stub/libcuda.so" | grep -q 'SONAME.*\[libcuda\.so\.1\]'; then
	say "the generated stub has no SONAME libcuda.so.1"
	exit 1
fi

# 4. Smoke test: nvcc must run from its new place.
"$tmp/$TK/bin/nvcc" --version >/dev/null

echo "$PINS" >"$tmp/.ok"
rm -rf "$DIR"
mv "$tmp" "$DIR"
trap - EXIT
say "ready in $DIR ($(du -sh "$DIR" | cut -f1), $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s)"
