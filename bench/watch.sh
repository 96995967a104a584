#!/bin/bash
# bench/watch.sh [N] — the cost of `vmmap watch` on a process with N
# mappings (default 60000): CPU time per record, as a ratio to reading
# /proc/PID/smaps_rollup and /proc/PID/smaps once, for full snapshots
# (--full-every 1) and for the default schedule (totals-only records while
# the mappings do not change); and the file size per full snapshot as a
# ratio to the smaps text.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${1:-60000}
COUNT=${COUNT:-10}
build_fixture maps_fixture
build_vmmap
run_fixture 60 maps_fixture "$N" - 0
SMAPS=$(wc -c < /proc/$FX/smaps)
# CPU seconds (user+sys) of one command, from bash's times of a subshell.
cpu() { local t; t=$( { /usr/bin/time -f "%U %S" "$@" > /dev/null; } 2>&1 | tail -1 ); echo "$t" | awk '{print $1+$2}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ROLLUP=$(for _ in 1 2 3 4 5; do cpu cat /proc/$FX/smaps_rollup; done | median)
FULL=$(for _ in 1 2 3 4 5; do cpu cat /proc/$FX/smaps; done | median)
for sched in 1 10; do
    F=/tmp/watch-bench-$sched.vmmap
    BENCH_FILES+=("$F")
    T=$(cpu "$VMMAP" watch "$FX" --interval 100ms --count "$COUNT" --full-every "$sched" -o "$F")
    PER=$(echo "$T / $COUNT" | bc -l)
    SIZE=$(wc -c < "$F")
    FULLS=$("$VMMAP" timeline "$F" --csv | awk -F, 'NR>1 && $3!="" {n++} END {print n+0}')
    printf 'full-every %-3s %3d records (%d full): %.1f ms CPU per record = %.2fx cat smaps_rollup, %.2fx cat smaps; file %d bytes = %.4fx smaps text per full snapshot\n' \
        "$sched" "$COUNT" "$FULLS" "$(echo "$PER*1000" | bc -l)" "$(echo "$PER/$ROLLUP" | bc -l)" "$(echo "$PER/$FULL" | bc -l)" \
        "$SIZE" "$(echo "$SIZE/$FULLS/$SMAPS" | bc -l)"
done
echo "(N=$N mappings, smaps $SMAPS bytes; cat smaps_rollup $(echo "$ROLLUP*1000" | bc -l | cut -c1-6) ms CPU, cat smaps $(echo "$FULL*1000" | bc -l | cut -c1-6) ms CPU)"
