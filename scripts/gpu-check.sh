#!/usr/bin/env bash
# scripts/gpu-check.sh: the device check, run on a GPU machine that has the
# NVIDIA driver but maybe no Go and no CUDA toolkit. Build bin/taobox-cuda
# elsewhere with `make cuda` and bring the bin/ folder along, then run this
# from the repository root (or anywhere: it cds there).
#
# Prints the platform, glibc, nvidia-smi, the binary's ldd, `taobox-cuda gpu
# info`, `taobox-cuda selftest`, `yuma check --batches 1000` (GPU vs CPU
# Yuma, bit for bit), a devnet whose epochs run in a GPU runner subprocess
# (--backend cuda), and `bench gpu --json`. Every step has a timeout; the
# whole check stays under 5 minutes. Exit status: that of the selftest, else
# that of yuma check (0 only when every kernel and every epoch matched the
# CPU code), 2 when the binary is missing.
#
#   TAOBOX_CUDA=path/to/taobox-cuda  use another binary
#   GPU_CHECK_DEVICE=N               selftest device ordinal (default 0)
set -u

cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec 2>&1 # one stream, in order

BIN=${TAOBOX_CUDA:-bin/taobox-cuda}
DEV=${GPU_CHECK_DEVICE:-0}
start=$(date +%s)

# step TITLE SECONDS CMD...: prints the title, runs CMD with a timeout and
# prints its exit status and time; returns the status.
step() {
	local title=$1 secs=$2 t0 rc
	shift 2
	echo
	echo "== $title"
	t0=$(date +%s.%N)
	timeout -k 5 "$secs" "$@"
	rc=$?
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "!! timed out after ${secs}s"
	fi
	echo "-- rc=$rc, $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}') s"
	return "$rc"
}

echo "== gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
step "platform" 5 uname -a
step "glibc (bin/taobox-cuda needs >= 2.34)" 5 sh -c 'getconf GNU_LIBC_VERSION 2>/dev/null || ldd --version | head -1'
step "nvidia-smi" 30 sh -c '
	command -v nvidia-smi >/dev/null || { echo "no nvidia-smi on PATH"; exit 1; }
	nvidia-smi --query-gpu=index,name,driver_version,compute_cap,memory.total,memory.used,pstate --format=csv ||
	nvidia-smi --query-gpu=index,name,driver_version,memory.total,memory.used --format=csv
	nvidia-smi | head -4 | tail -2'
step "libcuda.so.1 on the loader path" 5 sh -c 'ldconfig -p 2>/dev/null | grep -E "libcuda\.so|libnvidia-ptxjitcompiler" || echo "ldconfig lists no libcuda.so.1 (LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-unset})"'

if [ ! -x "$BIN" ]; then
	echo
	echo "!! $BIN is missing: build it with 'make cuda' on the build machine and bring bin/ along"
	exit 2
fi
step "binary" 5 sh -c "ls -l '$BIN'; sha256sum '$BIN' 2>/dev/null | cut -c1-16"
step "ldd $BIN (want only libcuda.so.1 and libc.so.6, both found)" 10 ldd "$BIN"
step "$BIN version" 10 "$BIN" version
step "$BIN gpu info" 30 "$BIN" gpu info

# selftest: progress on stderr as each test ends, the report on stdout at
# the end; show the progress (it is the whole report, or where it stopped).
echo
echo "== $BIN selftest --device $DEV"
t0=$(date +%s.%N)
out=$(mktemp)
timeout -k 5 150 "$BIN" selftest --device "$DEV" 2>&1 >"$out"
selftest=$?
# On failure, stdout may hold what gorgonia.org/cu printed before exiting
# (its init prints the cuInit error to stdout).
if [ "$selftest" != 0 ]; then cat "$out"; fi
rm -f "$out"
if [ "$selftest" = 124 ] || [ "$selftest" = 137 ]; then
	echo "!! timed out after 150s"
fi
echo "-- rc=$selftest, $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}') s"

# budget SECONDS: the smaller of SECONDS and what is left of the 280 s.
budget() {
	local left=$((280 - ($(date +%s) - start)))
	[ "$left" -lt "$1" ] && echo "$left" || echo "$1"
}

# Yuma GPU vs CPU on 1000 random batches (bit for bit).
yumacheck=0
if "$BIN" help yuma check >/dev/null 2>&1; then
	secs=$(budget 90)
	if [ "$secs" -gt 10 ]; then
		step "$BIN yuma check --batches 1000 --device $DEV" "$secs" "$BIN" yuma check --batches 1000 --device "$DEV"
		yumacheck=$?
	else
		echo
		echo "== yuma check skipped: only ${secs}s left of the 5-minute budget"
	fi
else
	echo
	echo "== yuma check: this taobox-cuda has no yuma check command"
fi

# The launcher end to end: a devnet whose epochs and honest miners' model
# go through a runner subprocess (--backend cuda: no fallback at start),
# with its log lines (the stop line counts the GPU's forward passes) and
# each subnet's incentive shares by behaviour: the validators re-score the
# GPU's answers on the CPU, so honest ≈ 1 says the GPU's log-probs pass.
if "$BIN" help runner >/dev/null 2>&1; then
	secs=$(budget 60)
	if [ "$secs" -gt 10 ]; then
		step "$BIN devnet --backend cuda --epochs 2 (GPU runner: Yuma and the honest miners)" "$secs" bash -o pipefail -c "'$BIN' devnet --backend cuda --epochs 2 --block-time 50ms --json --log-level info 2>&1 | grep -E 'msg=.(GPU runner|model loaded)|level=(WARN|ERROR)|\"blocks\"|\"failed_txs\"|\"incentive_shares\"|^ *\"(honest|random|other-model)\": '"
	fi
fi

# Yuma epochs/s (128x256, 4096 uids; CPU baseline), runner boundary,
# 1B-class F16 decode/prompt tokens/s, GPU memory.
if "$BIN" help bench gpu >/dev/null 2>&1; then
	secs=$(budget 150)
	if [ "$secs" -gt 20 ]; then
		step "$BIN bench gpu --json --device $DEV" "$secs" "$BIN" bench gpu --json --device "$DEV"
	else
		echo
		echo "== bench gpu skipped: only ${secs}s left of the 5-minute budget"
	fi
else
	echo
	echo "== bench gpu: this taobox-cuda has no bench gpu command yet"
fi

# The 1-token task rate beside bare quic-go on this host's cores (the build
# VM has 2, where both are CPU-bound), if `make device-bins` built the
# miner's test binary.
if [ -x bin/miner.test ]; then
	secs=$(budget 40)
	if [ "$secs" -gt 10 ]; then
		step "miner.test: 1-token tasks vs a bare quic-go echo" "$secs" sh -c 'cd miner && ../bin/miner.test -test.run "^\$" -test.bench "Tasks/(echo|task)/" -test.benchtime 3000x'
	fi
fi

echo
if [ "$selftest" = 0 ] && [ "$yumacheck" = 0 ]; then
	echo "== gpu-check: PASS ($(($(date +%s) - start)) s)"
else
	echo "== gpu-check: FAIL: selftest exit status $selftest, yuma check $yumacheck ($(($(date +%s) - start)) s)"
fi
[ "$selftest" = 0 ] && exit "$yumacheck"
exit "$selftest"
