#!/usr/bin/env bash
# bench/trace.sh [WORKLOAD ...]
#
# Overhead of tracing with vmmap's agent against the references, on the same
# workloads in one run, as ratios to the plain (untraced) run. Workloads:
#   stress   alloc_bench 10000000 2 4096 c   10M allocations, continuous sizes,
#                                            25-frame stacks on average
#   stressq  alloc_bench 10000000 2 4096 q   the same with 32 size classes
#   typical  typical_mix 6000000 2           compute-bound word counting
# Commands per workload, run in rounds (hyperfine, one run of each command
# per round, after a warm-up round; CPU is user+system):
#   plain                    the workload alone
#   LD_PRELOAD nop           preload_nop.so forwarding to glibc: the floor
#   vmmap run                `vmmap run -q -i 1s` (agent + 1 s snapshots)
#   heaptrack -r             heaptrack's raw recording (no interpreter)
# It prints, per command, its median wall seconds, the median over rounds
# of its wall ratio to the plain run of the same round (with their range
# and a 95% bootstrap interval of that median: on a noisy machine, the
# figure is only known to within it), the same for CPU, and for the tracers the file size per million
# allocations (each paired with a free), then one line per workload:
#   RATIO workload=stress vmmap_wall=1.9 vmmap_cpu=2.1 vmmap_mb_per_m=11.7 heaptrack_wall=7.8 ...
# Targets (issue 6): wall <= 2.0x on stress, <= 1.10x on typical, <= 3 MB per
# million allocations; a miss prints WARNING (exit status stays 0).
#
# Environment:
#   RUNS=3            rounds (after 1 warm-up round)
#   OUT=DIR           trace files and builds (default: ROOT/target/bench-trace)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/target/bench-trace}
RUNS=${RUNS:-3}
WORKLOADS=${*:-stress stressq typical}
mkdir -p "$OUT"
command -v hyperfine >/dev/null || { echo "hyperfine not found (apt-get install hyperfine)" >&2; exit 1; }
gcc -O2 -g -Wall -pthread -o "$OUT/alloc_bench" "$ROOT/bench/alloc_bench.c"
gcc -O2 -g -Wall -pthread -o "$OUT/typical_mix" "$ROOT/bench/typical_mix.c"
gcc -O2 -Wall -fPIC -shared -DMODE=0 -o "$OUT/preload_nop.so" "$ROOT/bench/preload_shim.c"
(cd "$ROOT" && cargo build --release -q -p vmmap -p vmmap-agent)
VMMAP=$ROOT/target/release/vmmap
HEAPTRACK=$(command -v heaptrack || true)

for w in $WORKLOADS; do
    case $w in
    stress) app="$OUT/alloc_bench 10000000 2 4096 c" ;;
    stressq) app="$OUT/alloc_bench 10000000 2 4096 q" ;;
    typical) app="$OUT/typical_mix 6000000 2" ;;
    *) echo "unknown workload $w" >&2; exit 2 ;;
    esac
    rm -f "$OUT/$w".* "$OUT"/ht_"$w"*
    names=(plain nop vmmap)
    lines=("$app" "env LD_PRELOAD=$OUT/preload_nop.so $app" "$VMMAP run -q -i 1s -o $OUT/$w.vmmap -- $app")
    if [ -n "$HEAPTRACK" ]; then
        names+=(heaptrack)
        lines+=("$HEAPTRACK -r -o $OUT/ht_$w $app")
    fi
    echo "== $w: $app"
    rm -f "$OUT/$w".round*.json
    # A warm-up round, then RUNS rounds of one run of each command: each
    # tracer is compared with the plain run beside it in time. The speed of
    # a shared machine drifts (here by a third within minutes), and blocks
    # of runs of one command at a time took that drift for overhead. The
    # order rotates from round to round, so that no command always runs
    # first, or right after the slowest one.
    for r in $(seq 0 "$RUNS"); do
        cmds=()
        for i in "${!names[@]}"; do
            j=$(( (i + r) % ${#names[@]} ))
            cmds+=(-n "${names[$j]}" "${lines[$j]}")
        done
        export_json=()
        [ "$r" -gt 0 ] && export_json=(--export-json "$OUT/$w.round$r.json")
        hyperfine -N --runs 1 "${export_json[@]}" --output null "${cmds[@]}" >/dev/null 2>&1
    done
    allocs=$("$VMMAP" trace "$OUT/$w.vmmap" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["allocations"])')
    vsize=$(stat -c %s "$OUT/$w.vmmap")
    hsize=$(cat "$OUT"/ht_"$w"* 2>/dev/null | wc -c)
    python3 - "$OUT" "$w" "$allocs" "$vsize" "$hsize" "$RUNS" <<'PY'
import json, random, statistics, sys
out_dir, w, allocs, vsize, hsize, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
rounds = []
for r in range(1, runs + 1):
    res = json.load(open(f"{out_dir}/{w}.round{r}.json"))["results"]
    rounds.append({x["command"]: (x["times"][0], x["user"] + x["system"]) for x in res})
def median_ci(xs, rng=random.Random(6)):
    """95% bootstrap interval of the median: how far noise alone moves it."""
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(2000))
    return meds[50], meds[1949]

out = {}
names = ["plain", "nop", "vmmap", "heaptrack"]
for name in [n for n in names if n in rounds[0]]:
    wall = [x[name][0] / x["plain"][0] for x in rounds]
    c = statistics.median(x[name][1] / x["plain"][1] for x in rounds)
    secs = statistics.median(x[name][0] for x in rounds)
    size = {"vmmap": vsize, "heaptrack": hsize}.get(name)
    per_m = f"{size / 1e6 / (allocs / 1e6):6.2f} MB per M allocations" if size else ""
    spread = f"[{min(wall):.2f}-{max(wall):.2f}]"
    lo, hi = median_ci(wall)
    ci = f"median in {lo:.2f}-{hi:.2f}" if name != "plain" else ""
    print(f"  {name:<10} {secs:8.3f} s  wall x{statistics.median(wall):5.2f} {spread:<12} {ci:<20} cpu x{c:5.2f}  {per_m}")
    out[name] = (statistics.median(wall), c, size / 1e6 / (allocs / 1e6) if size else 0, lo, hi)
v = out["vmmap"]
line = f"RATIO workload={w} allocations={allocs} vmmap_wall={v[0]:.2f} vmmap_wall_ci={v[3]:.2f}-{v[4]:.2f} vmmap_cpu={v[1]:.2f} vmmap_mb_per_m={v[2]:.2f} nop_wall={out['nop'][0]:.2f}"
if "heaptrack" in out:
    h = out["heaptrack"]
    line += f" heaptrack_wall={h[0]:.2f} heaptrack_cpu={h[1]:.2f} heaptrack_mb_per_m={h[2]:.2f}"
print(line)
target = {"stress": 2.0, "typical": 1.10}.get(w)
if target and v[0] > target:
    within = " (within the noise: its 95% interval reaches it)" if v[3] <= target else ""
    print(f"WARNING: {w}: vmmap wall x{v[0]:.2f} over the x{target} target{within}")
if v[2] > 3.0:
    print(f"WARNING: {w}: {v[2]:.2f} MB per million allocations, over the 3 MB target")
PY
done
