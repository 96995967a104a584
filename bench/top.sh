#!/bin/bash
# bench/top.sh [ROUNDS] — the cost of one `vmmap top` refresh, as a ratio
# to one `ps -eo pid,rss,vsz,comm` (and to one `vmmap ps`), measured in the
# same run on the same process table.
#
# A refresh is what the live view does every second: one sample of every
# process. Its CPU time is that of `vmmap top -n 21` minus that of
# `vmmap top -n 1` (both with a 10 ms delay, which is sleep, not CPU),
# divided by 20, so that vmmap's start and the first sample cancel out.
# ps and `vmmap ps` are timed over 20 runs each. The three alternate in
# every round (ROUNDS, default 7), and the medians are reported, so that
# the machine's load shifts them alike.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROUNDS=${1:-7}
N=20
command -v ps >/dev/null || die "ps (procps) is needed"
build_vmmap
# CPU seconds (user+sys, children included) of a command.
TIMES=$(mktemp /tmp/top-bench.XXXXXX)
BENCH_FILES+=("$TIMES")
trap bench_cleanup EXIT
cpu() { /usr/bin/time -f "%U %S" -o "$TIMES" "$@" >/dev/null 2>&1; awk '{print $1+$2}' "$TIMES"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ps_loop() { for ((i = 0; i < N; i++)); do ps -eo pid,rss,vsz,comm; done; }
vps_loop() { for ((i = 0; i < N; i++)); do "$VMMAP" ps; done; }
export -f ps_loop vps_loop
export N VMMAP
TOP=() PS=() VPS=() RATIO=() VRATIO=()
for ((r = 0; r < ROUNDS; r++)); do
    long=$(cpu "$VMMAP" top -n $((N + 1)) -d 10ms)
    short=$(cpu "$VMMAP" top -n 1 -d 10ms)
    per=$(echo "($long - $short) / $N" | bc -l)
    p=$(echo "$(cpu bash -c ps_loop) / $N" | bc -l)
    v=$(echo "$(cpu bash -c vps_loop) / $N" | bc -l)
    TOP+=("$per") PS+=("$p") VPS+=("$v")
    RATIO+=("$(echo "$per / $p" | bc -l)") VRATIO+=("$(echo "$per / $v" | bc -l)")
done
m() { printf '%s\n' "$@" | median; }
PROCS=$(ls -d /proc/[0-9]* | wc -l)
printf 'vmmap top refresh: %.2f ms CPU; ps -eo pid,rss,vsz,comm: %.2f ms; vmmap ps: %.2f ms (%d processes, median of %d rounds)\n' \
    "$(echo "$(m "${TOP[@]}") * 1000" | bc -l)" "$(echo "$(m "${PS[@]}") * 1000" | bc -l)" \
    "$(echo "$(m "${VPS[@]}") * 1000" | bc -l)" "$PROCS" "$ROUNDS"
printf 'ratio to ps: %.2fx   ratio to vmmap ps: %.2fx (medians of the per-round ratios)\n' \
    "$(m "${RATIO[@]}")" "$(m "${VRATIO[@]}")"
