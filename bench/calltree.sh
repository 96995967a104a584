#!/usr/bin/env bash
# bench/calltree.sh
#
# Cost of analysing a 10-million-allocation trace (issue 7): the time and
# peak memory of `vmmap trace FILE calltree` against `heaptrack_print` on
# heaptrack's trace of the same workload (alloc_bench 10000000 2 4096 q,
# recorded by each tool in the same run), as a ratio.
#   RATIO bench=calltree vmmap_s=0.70 heaptrack_print_s=2.00 time_ratio=0.35 vmmap_peak_mib=50 heaptrack_print_peak_mib=56
# Targets: time ratio <= 0.35, vmmap peak <= 64 MiB; a miss prints WARNING
# (exit status stays 0). The symbol cache is not used (--no-symbol-cache):
# every run symbolises from scratch, as a first open does.
#
# Environment:
#   RUNS=5            hyperfine runs per command (after 1 warm-up run)
#   SHARED_BENCH=DIR  where alloc_bench.c is (default: ROOT/../shared/bench)
#   OUT=DIR           traces and builds (default: ROOT/target/bench-calltree)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
OUT=${OUT:-$ROOT/target/bench-calltree}
RUNS=${RUNS:-5}
mkdir -p "$OUT"
for t in hyperfine heaptrack heaptrack_print; do
    command -v $t >/dev/null || { echo "$t not found (apt-get install hyperfine heaptrack)" >&2; exit 1; }
done
gcc -O2 -g -Wall -pthread -o "$OUT/alloc_bench" "$SHARED_BENCH/alloc_bench.c"
(cd "$ROOT" && cargo build --release -q -p vmmap -p vmmap-agent)
VMMAP=$ROOT/target/release/vmmap
APP="$OUT/alloc_bench 10000000 2 4096 q"

rm -f "$OUT"/q.vmmap "$OUT"/ht_q*
echo "== recording (vmmap run, heaptrack)"
$VMMAP run -q -i 1s -o "$OUT/q.vmmap" -- $APP >/dev/null
heaptrack -o "$OUT/ht_q" $APP >/dev/null 2>&1
HT=$(ls "$OUT"/ht_q*.zst | head -1)

echo "== analysing (hyperfine, $RUNS runs)"
hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$OUT/calltree.json" --output null \
    -n vmmap "$VMMAP trace $OUT/q.vmmap calltree --no-symbol-cache" \
    -n heaptrack_print "heaptrack_print $HT" >/dev/null
peak() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
vpeak=$(peak "$VMMAP" trace "$OUT/q.vmmap" calltree --no-symbol-cache)
hpeak=$(peak heaptrack_print "$HT")
python3 - "$OUT/calltree.json" "$vpeak" "$hpeak" <<'PY'
import json, statistics, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
v, h = statistics.median(res["vmmap"]["times"]), statistics.median(res["heaptrack_print"]["times"])
vp, hp = int(sys.argv[2]) / 1024, int(sys.argv[3]) / 1024
vc = res["vmmap"]["user"] + res["vmmap"]["system"]
hc = res["heaptrack_print"]["user"] + res["heaptrack_print"]["system"]
print(f"  vmmap trace calltree  {v:6.3f} s wall  {vc:6.3f} s cpu  {vp:6.1f} MiB peak")
print(f"  heaptrack_print       {h:6.3f} s wall  {hc:6.3f} s cpu  {hp:6.1f} MiB peak")
print(f"RATIO bench=calltree vmmap_s={v:.3f} heaptrack_print_s={h:.3f} time_ratio={v / h:.2f} "
      f"cpu_ratio={vc / hc:.2f} vmmap_peak_mib={vp:.0f} heaptrack_print_peak_mib={hp:.0f}")
if v / h > 0.35:
    print(f"WARNING: time ratio {v / h:.2f} is over the 0.35 target")
if vp > 64:
    print(f"WARNING: peak {vp:.0f} MiB is over the 64 MiB target")
PY
