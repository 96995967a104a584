#!/usr/bin/env bash
# bench/calltree.sh
#
# Cost of analysing an allocation-heavy trace (issues 7 and 21): the time
# and peak memory of `vmmap trace FILE calltree` against `heaptrack_print`
# on heaptrack's trace of the same workload, recorded by each tool in the
# same run, as a ratio. Two workloads:
#   calltree          alloc_bench 10000000 2 4096 q (bench/alloc_bench.c):
#                     10 million allocations, each thread freeing its own
#   calltree-xthread  xthread_bench 400000 (tests/fixtures/xthread.cpp):
#                     7.2 million operations over 5 threads, every block
#                     freed by another thread than the one that allocated it
# Each round runs both commands one after the other (vmmap first); times,
# CPU (user + system) and peak RSS are taken in every round and their
# medians reported. One line per workload, and both again at the end:
#   RATIO bench=calltree vmmap_s=0.70 heaptrack_print_s=2.00 time_ratio=0.35 cpu_ratio=0.60 vmmap_peak_mib=50 heaptrack_print_peak_mib=56
# time_ratio is the median of the rounds' ratios; cpu_ratio the ratio of
# the median CPU times. vmmap reads a trace on three threads (file,
# decoding, counting), heaptrack_print on one, so on a busy machine the
# wall-time ratio rises towards the CPU ratio.
# Targets: time ratio <= 0.5, vmmap peak <= 64 MiB; a miss prints WARNING
# (exit status stays 0). The symbol cache is not used (--no-symbol-cache):
# every run symbolises from scratch, as a first open does.
#
# Environment:
#   RUNS=5            rounds of one run of each command (after a warm-up round)
#   OUT=DIR           traces and builds (default: ROOT/target/bench-calltree)
#   ONLY=NAME         run one workload (calltree or calltree-xthread)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/target/bench-calltree}
RUNS=${RUNS:-5}
mkdir -p "$OUT"
for t in hyperfine heaptrack heaptrack_print; do
    command -v $t >/dev/null || { echo "$t not found (apt-get install hyperfine heaptrack)" >&2; exit 1; }
done
gcc -O2 -g -Wall -pthread -o "$OUT/alloc_bench" "$ROOT/bench/alloc_bench.c"
g++ -O2 -g -Wall -pthread -o "$OUT/xthread_bench" "$ROOT/crates/vmmap-cli/tests/fixtures/xthread.cpp"
(cd "$ROOT" && cargo build --release -q -p vmmap -p vmmap-agent)
VMMAP=$ROOT/target/release/vmmap
workload() {
    local name=$1 APP=$2
    rm -f "$OUT"/$name.vmmap "$OUT"/ht_$name*
    echo "== $name: recording $APP (vmmap run, heaptrack)"
    $VMMAP run -q -i 1s -o "$OUT/$name.vmmap" -- $APP >/dev/null
    heaptrack -o "$OUT/ht_$name" $APP >/dev/null 2>&1
    HT=$(ls "$OUT"/ht_$name*.zst | head -1)

    echo "== $name: analysing (hyperfine, $RUNS rounds of one run each, after a warm-up round)"
    # Rounds, not blocks of runs of one command: the ratio is taken within each
    # round, so a drift in the machine's speed does not count as a difference.
    # /usr/bin/time records each run's peak RSS (its own cost, a fork and a
    # wait, is the same for both commands).
    run_round() {
        local r=$1
        shift
        hyperfine -N --runs 1 --output null "$@" \
            -n vmmap "/usr/bin/time -f %M -o $OUT/$name.peak.vmmap.$r $VMMAP trace $OUT/$name.vmmap calltree --no-symbol-cache" \
            -n heaptrack_print "/usr/bin/time -f %M -o $OUT/$name.peak.heaptrack_print.$r heaptrack_print $HT" >/dev/null 2>&1
    }
    run_round 0
    rm -f "$OUT"/$name.round*.json "$OUT"/$name.peak.*
    for r in $(seq 1 "$RUNS"); do
        run_round "$r" --export-json "$OUT/$name.round$r.json"
    done
    python3 - "$OUT" "$RUNS" "$name" <<'PY' | tee -a "$OUT/summary.txt"
import json, statistics, sys
out, runs, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rounds = []
for r in range(1, runs + 1):
    res = json.load(open(f"{out}/{name}.round{r}.json"))["results"]
    rounds.append({x["command"]: (x["times"][0], x["user"] + x["system"]) for x in res})
def peak(cmd):
    kib = [int(open(f"{out}/{name}.peak.{cmd}.{r}").read().split()[-1]) for r in range(1, runs + 1)]
    return statistics.median(kib) / 1024
v = statistics.median(x["vmmap"][0] for x in rounds)
h = statistics.median(x["heaptrack_print"][0] for x in rounds)
vc = statistics.median(x["vmmap"][1] for x in rounds)
hc = statistics.median(x["heaptrack_print"][1] for x in rounds)
ratios = [x["vmmap"][0] / x["heaptrack_print"][0] for x in rounds]
ratio = statistics.median(ratios)
vp, hp = peak("vmmap"), peak("heaptrack_print")
print(f"  vmmap trace calltree  {v:6.3f} s wall  {vc:6.3f} s cpu  {vp:6.1f} MiB peak")
print(f"  heaptrack_print       {h:6.3f} s wall  {hc:6.3f} s cpu  {hp:6.1f} MiB peak")
print(f"  time ratio per round: {' '.join(f'{r:.2f}' for r in ratios)}")
print(f"RATIO bench={name} vmmap_s={v:.3f} heaptrack_print_s={h:.3f} time_ratio={ratio:.2f} "
      f"cpu_ratio={vc / hc:.2f} vmmap_peak_mib={vp:.0f} heaptrack_print_peak_mib={hp:.0f}")
if ratio > 0.5:
    print(f"WARNING: {name}: time ratio {ratio:.2f} is over the 0.5 target")
if vp > 64:
    print(f"WARNING: {name}: peak {vp:.0f} MiB is over the 64 MiB target")
PY
}

rm -f "$OUT/summary.txt"
if [ -z "${ONLY:-}" ] || [ "$ONLY" = calltree ]; then
    workload calltree "$OUT/alloc_bench 10000000 2 4096 q"
fi
if [ -z "${ONLY:-}" ] || [ "$ONLY" = calltree-xthread ]; then
    workload calltree-xthread "$OUT/xthread_bench 400000"
fi
echo "== both workloads"
grep -E '^(RATIO|WARNING)' "$OUT/summary.txt"
