#!/bin/bash
# bench/sharing.sh [SIZE_MIB] — the added cost of exact sharing
# (`--sharing exact`: pagemap for every page, kpagecount for every
# shareable page as root) on a process with SIZE MiB resident (default
# 8192: 4 GiB private anonymous, 4 GiB shmem half shared with a child), as
# a ratio to `cat /proc/PID/smaps` of the same process. The target is
# <= 2x (reading kpagecount with one pread per page costs about 19x).
# Also the whole snapshot with exact sharing, and the combined report of
# the parent and its child. Frees the memory afterwards.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE=${1:-8192}
RUNS=${RUNS:-5}
mkdir -p "$ROOT/target/bench"
gcc -O2 -o "$ROOT/target/bench/sharefill" "$ROOT/bench/sharefill.c"
(cd "$ROOT" && cargo build --release -q -p vmmap)
VMMAP=$ROOT/target/release/vmmap
OUT=$(mktemp /tmp/sharing-bench.XXXXXX)
"$ROOT/target/bench/sharefill" "$SIZE" > "$OUT" &
FX=$!
trap 'kill $FX 2>/dev/null; rm -f "$OUT"' EXIT
for _ in $(seq 3000); do grep -q READY "$OUT" && break; sleep 0.1; done
CHILD=$(sed -n 's/.*child=\([0-9]*\).*/\1/p' "$OUT")
echo "target $FX: $(grep VmRSS /proc/$FX/status | tr -s ' ')"
[ -r /proc/kpagecount ] && echo "kpagecount readable: Shared WS from kpagecount" \
    || echo "not root: Shared WS from pagemap bit 56"
hyperfine -N --output=pipe --warmup 1 --runs "$RUNS" --export-json "$ROOT/target/bench/sharing.json" \
    -n "cat smaps" "cat /proc/$FX/smaps" \
    -n "vmmap" "$VMMAP $FX -s --no-ptrace" \
    -n "vmmap exact" "$VMMAP $FX -s --no-ptrace --sharing exact" \
    -n "vmmap combined" "$VMMAP $FX $CHILD --no-ptrace" > /dev/null
python3 - "$ROOT/target/bench/sharing.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
cat, fast, exact, comb = r["cat smaps"], r["vmmap"], r["vmmap exact"], r["vmmap combined"]
print(f"cat smaps        {cat*1000:8.1f} ms")
print(f"vmmap            {fast*1000:8.1f} ms")
print(f"vmmap exact      {exact*1000:8.1f} ms")
print(f"vmmap combined   {comb*1000:8.1f} ms  (parent and child, frame union)")
print(f"RATIO sharing_added_cost {(exact-fast)/cat:.2f}x cat smaps (target <= 2)")
print(f"RATIO sharing_exact_total {exact/cat:.2f}x cat smaps")
print(f"RATIO combined_two_processes {comb/cat:.2f}x cat smaps")
PY
