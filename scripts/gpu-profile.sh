#!/usr/bin/env bash
# scripts/gpu-profile.sh: where the GPU time goes, for tuning on a GPU
# machine (the device check itself is scripts/gpu-check.sh). Needs
# bin/taobox-cuda (make cuda) and Nsight Compute's ncu on that machine.
#
# Prints, per kernel (summed over its launches in the profiled window): the
# launches, the time, the DRAM bytes read and written and the fraction of
# the DRAM peak it ran at, for
#   1. one decode step (and a bit) of the synthetic 1B F16 model;
#   2. one 128×256 Yuma batch (the warm-up batch of bench gpu);
# then the Yuma engine's step timings (TAOBOX_YUMA_PROFILE breakdown) and the
# decode figures without the profiler. Raw CSV goes to $OUT when set.
#
#   PROFILE_LLAMA_SKIP / PROFILE_LLAMA_COUNT  the kernel window (default 400 / 200)
#   PROFILE_PARTS  which parts to run (default "llama yuma bench"; also
#                  "variants": the decode benchmark and the llama selftest
#                  under each of PROFILE_VARIANTS, ;-separated lists of
#                  TAOBOX_LLAMA_* settings, each run twice)
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec 2>&1
BIN=${TAOBOX_CUDA:-bin/taobox-cuda}
OUTDIR=${OUT:-$(mktemp -d)}
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
if [ -z "$NCU" ]; then
	echo "no ncu on this machine"
	exit 2
fi
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__grid_size,sm__throughput.avg.pct_of_peak_sustained_elapsed

summarize() { # CSV file, title
	python3 - "$1" "$2" <<'EOF'
import csv, sys, collections
path, title = sys.argv[1], sys.argv[2]
rows = []
with open(path) as f:
    lines = [l for l in f if l.startswith('"')]
r = csv.DictReader(lines)
agg = collections.OrderedDict()
def num(s):
    try: return float(s.replace(',', ''))
    except Exception: return 0.0
units = {}
for row in r:
    name = row.get('Kernel Name', '')
    if not name:
        continue  # the units row
    key = (name, row.get('launch__grid_size', ''))
    a = agg.setdefault(key, collections.Counter())
    a['n'] += 1
    a['t'] += num(row.get('gpu__time_duration.sum', '0'))
    a['rd'] += num(row.get('dram__bytes_read.sum', '0'))
    a['wr'] += num(row.get('dram__bytes_write.sum', '0'))
    a['pct'] += num(row.get('dram__throughput.avg.pct_of_peak_sustained_elapsed', '0'))
    a['sm'] += num(row.get('sm__throughput.avg.pct_of_peak_sustained_elapsed', '0'))
tot = sum(a['t'] for a in agg.values())
print(f"== {title}: {sum(a['n'] for a in agg.values())} launches, {tot/1e3:.1f} us of kernel time (units as ncu reports: ns, bytes)")
print(f"{'kernel':<18} {'grid':>6} {'n':>4} {'time us':>9} {'us/launch':>9} {'MB read':>9} {'MB write':>8} {'GB/s':>7} {'dram%':>6} {'sm%':>5}")
for (name, grid), a in sorted(agg.items(), key=lambda kv: -kv[1]['t']):
    n = a['n']
    gbs = (a['rd'] + a['wr']) / a['t'] if a['t'] else 0
    print(f"{name[:18]:<18} {grid:>6} {n:>4} {a['t']/1e3:>9.1f} {a['t']/1e3/n:>9.2f} {a['rd']/1e6:>9.2f} {a['wr']/1e6:>8.2f} {gbs:>7.0f} {a['pct']/n:>6.1f} {a['sm']/n:>5.1f}")
EOF
}

parts=" ${PROFILE_PARTS:-llama yuma bench} "
if [[ $parts == *" variants "* ]]; then
	IFS=';' read -r -a variants <<<"${PROFILE_VARIANTS:-TAOBOX_LLAMA_FUSE=0 TAOBOX_LLAMA_ROWS=1;TAOBOX_LLAMA_ROWS=1;TAOBOX_LLAMA_ROWS=2;TAOBOX_LLAMA_ROWS=4;TAOBOX_LLAMA_WARPS=32;TAOBOX_LLAMA_ATTN_THREADS=512}"
	echo "== decode variants (synthetic 1B F16; selftest of the llama kernels under each)"
	for pass in 1 2; do
		for v in "${variants[@]}"; do
			st=ok
			if [ "$pass" = 1 ]; then
				env $v timeout -k 5 60 "$BIN" selftest --run llama >"$OUTDIR/selftest.out" 2>&1 || st=FAIL
			fi
			line=$(env $v timeout -k 5 60 "$BIN" bench gpu --no-yuma --decode 256 2>/dev/null | grep '^llama' | sed 's/.*MB weights, //; s/, prompt/; prompt/; s/ (token by token).*//')
			printf '%-60s selftest %-4s %s\n' "$v" "$( [ "$pass" = 1 ] && echo "$st" || echo "-")" "$line"
		done
	done
fi
if [[ $parts == *" llama "* ]]; then
echo "== decode kernels (synthetic 1B F16), ncu"
timeout -k 5 150 "$NCU" --clock-control none --print-units base --metrics "$metrics" --csv --page raw \
	--kernel-name regex:'^(matvec3.*|prep_input|rope_pairs|attention|embed|argmax_partial|argmax_logprob|advance_pos)$' \
	--launch-skip "${PROFILE_LLAMA_SKIP:-400}" --launch-count "${PROFILE_LLAMA_COUNT:-200}" \
	"$BIN" bench gpu --iters 1 --decode 8 --prompt 2 >"$OUTDIR/ncu-llama.csv" 2>"$OUTDIR/ncu-llama.err"
echo "-- rc=$?"
tail -3 "$OUTDIR/ncu-llama.err"
summarize "$OUTDIR/ncu-llama.csv" "decode kernels"
fi

if [[ $parts == *" yuma "* ]]; then
echo
echo "== yuma kernels (128x256 batch), ncu"
timeout -k 5 90 "$NCU" --clock-control none --print-units base --metrics "$metrics" --csv --page raw \
	--kernel-name regex:'^yuma_' --launch-count 17 \
	"$BIN" bench gpu --iters 1 --no-llama >"$OUTDIR/ncu-yuma.csv" 2>"$OUTDIR/ncu-yuma.err"
echo "-- rc=$?"
tail -3 "$OUTDIR/ncu-yuma.err"
summarize "$OUTDIR/ncu-yuma.csv" "yuma kernels"
fi

if [[ $parts == *" bench "* ]]; then
echo
echo "== bench gpu (no profiler)"
timeout -k 5 90 "$BIN" bench gpu --iters 20 --json >"$OUTDIR/bench.json"
echo "-- rc=$?"
python3 - "$OUTDIR/bench.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for y in r['yuma']:
    print(f"yuma {y['shape']}: GPU {y['gpu_ms_per_batch']:.3f} ms, CPU {y['cpu_ms_per_batch']:.2f} ms")
    print("   ", y.get('gpu_timings', ''))
for l in r['llama']:
    print(f"llama {l['dtype']}: decode {l['decode_tok_per_s']:.1f} tok/s ({l['fraction_of_peak']*100:.1f}% of {l['peak_gb_per_s']:.0f} GB/s datasheet, {l.get('fraction_of_read', 0)*100:.1f}% of {l.get('read_gb_per_s', 0):.0f} GB/s measured read), prompt {l['prompt_tok_per_s']:.1f} tok/s batched, {l.get('prompt_serial_tok_per_s', 0):.1f} token by token")
EOF
fi
