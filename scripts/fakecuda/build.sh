#!/usr/bin/env bash
# scripts/fakecuda/build.sh OUTDIR: builds the fake libcuda.so.1 (see
# fakecuda.cc) into OUTDIR, against the headers in ${CUDA:-.cuda}. Every cu*
# entry point that fakecuda.cc does not define returns
# CUDA_ERROR_NOT_SUPPORTED (801).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=${1:?usage: build.sh OUTDIR}
CUDA=${CUDA:-.cuda}
mkdir -p "$out"
here=scripts/fakecuda
echo '#include <cuda.h>' | gcc -E -P -I"$CUDA/usr/include" -x c - |
	grep -oE '\bcu[A-Z][A-Za-z0-9_]* *\(' | tr -d ' (' | LC_ALL=C sort -u >"$out/all.txt"
# The kernel tables: every extern "C" kernel of the sources each unit includes.
kernels() { sed -n 's/^extern "C" __global__ void \(__launch_bounds__([^)]*) \)\{0,1\}\([A-Za-z_0-9]*\)(.*/KERNEL(\2)/p' "$@"; }
kernels kernels/smoke.cu kernels/llama.cu >"$out/kernels_main.inc"
kernels kernels/yuma.cu >"$out/kernels_yuma.inc"
flags="-std=c++17 ${FAKECUDA_CXXFLAGS:--O1} -ffp-contract=off -fPIC -I$CUDA/usr/include -I$out"
g++ $flags -c "$here/fakecuda.cc" -o "$out/fakecuda.o"
g++ $flags -c "$here/fake_yuma.cc" -o "$out/fake_yuma.o"
nm -g --defined-only "$out/fakecuda.o" "$out/fake_yuma.o" | awk 'NF == 3 {print $3}' | LC_ALL=C sort -u >"$out/defined.txt"
LC_ALL=C comm -23 "$out/all.txt" "$out/defined.txt" |
	awk '{print "int " $1 "(void){return 801;}"}' >"$out/rest.c"
gcc -O1 -fPIC -c "$out/rest.c" -o "$out/rest.o"
g++ -shared -Wl,-soname,libcuda.so.1 -o "$out/libcuda.so.1" "$out/fakecuda.o" "$out/fake_yuma.o" "$out/rest.o"
rm -f "$out"/*.o "$out"/*.txt "$out"/*.inc "$out/rest.c"
