#!/bin/bash
# bench/find.sh [SIZE_MIB] — `vmmap find` of a regex over SIZE MiB resident
# (default 4096), as a ratio to `grep -c` over a file of the same bytes
# (page cache warm): the reference pays the regex engine and a memory-speed
# read, vmmap pays the regex engine and the cross-process read. Output goes
# to a pipe (grep stops at the first match when it sees /dev/null). Also a
# literal search, as a ratio to `grep -c -F`. The target is <= 1.5x.
# The fixture (bench/memfill.c) and the dump are the strings benchmark's.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SIZE=${1:-4096}
RUNS=${RUNS:-5}
RE=${RE:-'user_id [0-9a-z_ ]+token'}
LIT=${LIT:-'GET /index.html'}
start_memfill "$SIZE"
echo "regex '$RE': vmmap $("$VMMAP" find "$FX" --region "$ADDR" -E "$RE" -c) matches, grep -c $(LC_ALL=C grep -c -a -E "$RE" "$DUMP" || true) lines"
echo "literal '$LIT': vmmap $("$VMMAP" find "$FX" --region "$ADDR" "$LIT" -c) matches, grep -c -F $(LC_ALL=C grep -c -a -F "$LIT" "$DUMP" || true) lines"
hyperfine -N --output=pipe --warmup 1 --runs "$RUNS" --export-json "$ROOT/target/bench/find.json" \
    -n "grep -c -E" "env LC_ALL=C grep -c -a -E '$RE' $DUMP" \
    -n "vmmap find -E" "$VMMAP find $FX --region $ADDR -E '$RE' -c" \
    -n "grep -c -F" "env LC_ALL=C grep -c -a -F '$LIT' $DUMP" \
    -n "vmmap find" "$VMMAP find $FX --region $ADDR '$LIT' -c" > /dev/null
# The memory budget: vmmap's peak RSS while it searches SIZE MiB.
PEAK=$( { /usr/bin/time -f "%M" "$VMMAP" find "$FX" --region "$ADDR" -E "$RE" -c > /dev/null; } 2>&1 | tail -1)
echo "vmmap find peak RSS: $((PEAK / 1024)) MiB while searching $SIZE MiB"
python3 - "$ROOT/target/bench/find.json" "$SIZE" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
size = int(sys.argv[2])
for vm, ref in [("vmmap find -E", "grep -c -E"), ("vmmap find", "grep -c -F")]:
    print(f"{vm:14} {r[vm]*1000:8.1f} ms  {size / r[vm]:7.0f} MiB/s  = {r[vm]/r[ref]:.2f}x {ref} ({r[ref]*1000:.1f} ms)")
PY
