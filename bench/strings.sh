#!/bin/bash
# bench/strings.sh [SIZE_MIB] — `vmmap strings` on one SIZE MiB region of
# text-like data (default 1024), as a ratio to GNU strings on a file of the
# same bytes (page cache warm): the reference does the same scan without
# reading another process. Both look for ASCII of 4 characters or more
# (`vmmap strings -e ascii`, `strings -a -n 4`); the all-encodings scan
# (ASCII, UTF-8 and UTF-16LE at both alignments) is timed too, as a ratio
# to `strings -a` plus `strings -a -el`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SIZE=${1:-1024}
RUNS=${RUNS:-5}
start_memfill "$SIZE"
# The outputs agree (same strings, same count).
N_REF=$(strings -a -n 4 "$DUMP" | wc -l)
N_VM=$("$VMMAP" strings "$FX" --region "$ADDR" -e ascii | wc -l)
echo "strings found: GNU strings $N_REF, vmmap $N_VM"
hyperfine -N --output=pipe --warmup 1 --runs "$RUNS" --export-json "$ROOT/target/bench/strings.json" \
    -n "strings -a" "strings -a -n 4 $DUMP" \
    -n "vmmap ascii" "$VMMAP strings $FX --region $ADDR -e ascii" \
    -n "strings -a + -el" "sh -c 'strings -a -n 4 $DUMP; strings -a -n 4 -el $DUMP'" \
    -n "vmmap all" "$VMMAP strings $FX --region $ADDR -e all" > /dev/null
python3 - "$ROOT/target/bench/strings.json" "$SIZE" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
size = int(sys.argv[2])
for vm, ref in [("vmmap ascii", "strings -a"), ("vmmap all", "strings -a + -el")]:
    print(f"{vm:12} {r[vm]*1000:8.1f} ms  {size / r[vm]:7.0f} MiB/s  = {r[vm]/r[ref]:.2f}x {ref} ({r[ref]*1000:.1f} ms)")
PY
