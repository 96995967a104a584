#!/usr/bin/env bash
# bench/attach.sh [THREADS ...]
#
# How long `vmmap attach` stops the target, for processes with 1, 100 and
# 1,000 threads (bench/threads_fixture.c: threads blocked in pause()), and
# for one whose every thread spins in user space (the chosen thread is then
# interrupted in the program's code). vmmap stops one thread only, for the
# two calls it makes on it (dlopen of the agent, then the agent's attach
# entry, which rewrites the relocation slots and starts its writer); the
# other threads run on. Prints per process the median over RUNS attaches of
# that thread's stop and of the whole attach (from vmmap's start of the
# injection to the agent running), then one line:
#   STOP threads=100 stop_ms=2.1 attach_ms=14.0
# Target (issue 22): under 50 ms for 100 threads; a miss prints WARNING.
#
# Then the overhead while attached, and heaptrack -p beside it, on
# bench/trace.sh's workloads (stress: alloc_bench N 2 4096 c; typical:
# typical_mix N 2; N=OVERHEAD_N, default 10000000 and 6000000 as in
# bench/trace.sh; OVERHEAD_N=0 skips it). Each workload is started with
# BENCH_WAIT_START (bench/start_signal.h: it prints READY and waits for
# SIGUSR1 in sigwait, a running program's idle thread); the tool attaches,
# and once it has (vmmap: the agent's writer thread runs; heaptrack: its
# gdb injection returned) the workload gets the signal and times its work
# itself. Rounds by bench/rounds.py --own-wall, each round one run plain,
# one under `vmmap attach` (release build, the agent beside it), one under
# `heaptrack -p` (through gdb), the ratios of the workload's own wall time
# to the plain run of the same round, medians over ROUNDS rounds after a
# warm-up round. Per tool: attach_ms (vmmap: its own figure, from its start
# to the agent running; heaptrack: from its start to its injection's end),
# stop_ms (vmmap: the chosen thread's stop), attached (the tool's library
# was in the process when the work started), survived (the workload ended
# normally and printed its result), in how many rounds. Then one line per
# workload:
#   RATIO attach-stress vmmap=1.95 heaptrack=... cpu: ... vmmap.attach_ms=..
# Targets: those of vmmap run (x2.0 on stress, x1.10 on typical); a miss
# prints WARNING. The load average is printed at the start and the end.
#
# Environment:
#   RUNS=5                attaches per process (the stop times)
#   ROUNDS=5              rounds of the overhead comparison
#   VMMAP=PATH            the vmmap binary (default: target/release/vmmap,
#                         built with the agent)
set -euo pipefail
custom_vmmap=${VMMAP:-}
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VMMAP=${custom_vmmap:-$VMMAP}
OUT=${OUT:-$ROOT/target/bench-attach}
RUNS=${RUNS:-5}
ROUNDS=${ROUNDS:-5}
OVERHEAD_N=${OVERHEAD_N:-}
export OUT VMMAP OVERHEAD_N

# workload W: the command line of workload W, in WORKLOAD.
workload() {
    case $1 in
    stress) WORKLOAD=("$ROOT/target/bench/alloc_bench" "${OVERHEAD_N:-10000000}" 2 4096 c) ;;
    typical) WORKLOAD=("$ROOT/target/bench/typical_mix" "${OVERHEAD_N:-6000000}" 2) ;;
    *) die "unknown workload $1" ;;
    esac
}

# one_round TOOL W: one run of workload W, plain or under TOOL (vmmap,
# heaptrack) attached while it waits for its start; prints the workload's
# own line (wall=...) and a FIGURE line, for rounds.py --own-wall.
one_round() {
    local tool=$1 w=$2 base=$OUT/round-$1-$2 pid tpid="" t0 status=0 i
    local attach_ms=0 stop_ms=0 attached=1 survived=0
    workload "$w"
    rm -f "$base".*
    : >"$base.out"
    BENCH_WAIT_START=1 "${WORKLOAD[@]}" >"$base.out" 2>&1 &
    pid=$!
    wait_ready "$base.out" "$pid" "$w" 60 >/dev/null
    case $tool in
    plain) ;;
    vmmap)
        "$VMMAP" attach "$pid" -i 0 -o "$base.vmmap" 2>"$base.tool" &
        tpid=$!
        # Attached once the agent's writer runs (vmmap drains it then).
        attached=0
        for ((i = 0; i < 6000; i++)); do
            if grep -qx vmmap-agent /proc/"$pid"/task/*/comm 2>/dev/null; then attached=1; break; fi
            kill -0 "$tpid" 2>/dev/null || break
            sleep 0.01
        done
        ;;
    heaptrack)
        t0=$(date +%s%N)
        # Its own session, to end its pipeline if the injection failed
        # (its reader then waits for a writer that never comes).
        setsid heaptrack -o "$base.ht" -p "$pid" >"$base.tool" 2>&1 &
        tpid=$!
        for ((i = 0; i < 12000; i++)); do
            grep -qs "injection finished" "$base.tool" && break
            kill -0 "$tpid" 2>/dev/null || break
            sleep 0.01
        done
        attach_ms=$((($(date +%s%N) - t0) / 1000000))
        attached=0
        grep -q libheaptrack_inject /proc/"$pid"/maps 2>/dev/null && attached=1
        ;;
    esac
    kill -USR1 "$pid" 2>/dev/null || true
    wait "$pid" || status=$?
    [ "$status" = 0 ] && grep -q 'wall=' "$base.out" && survived=1
    grep 'wall=' "$base.out" || true
    case $tool in
    vmmap)
        wait "$tpid" || true
        local line
        line=$(tail -1 "$base.tool")
        attach_ms=$(sed -n 's/.* in \([0-9.]*\) ms, one thread.*/\1/p' <<<"$line")
        stop_ms=$(sed -n 's/.*one thread stopped \([0-9.]*\) ms.*/\1/p' <<<"$line")
        echo "FIGURE attach_ms=${attach_ms:-0} stop_ms=${stop_ms:-0} attached=$attached survived=$survived"
        ;;
    heaptrack)
        # heaptrack ends when its reader has the whole recording; one
        # whose injection failed never does (its reader waits for a writer).
        for ((i = 0; i < 600 * attached; i++)); do kill -0 "$tpid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$tpid" 2>/dev/null; then
            kill -TERM -- -"$tpid" 2>/dev/null || true
            sleep 2
            kill -KILL -- -"$tpid" 2>/dev/null || true
        fi
        wait "$tpid" 2>/dev/null || true
        echo "FIGURE attach_ms=$attach_ms attached=$attached survived=$survived"
        ;;
    *) echo "FIGURE survived=$survived" ;;
    esac
}

if [ "${1:-}" = --round ]; then
    one_round "$2" "$3"
    exit 0
fi

SIZES=${*:-1 100 1000 busy}
mkdir -p "$OUT"
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
build_fixture threads_fixture -Wall -pthread
[ -n "$custom_vmmap" ] || build_vmmap -p vmmap-agent
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for n in $SIZES; do
    if [ "$n" = busy ]; then args="0 0 2"; label="2 spinning"; else args="0 $((n > 1 ? n - 1 : 0)) 0"; label=$n; fi
    "$ROOT/target/bench/threads_fixture" $args > "$OUT/fixture.out" &
    pid=$!
    for _ in $(seq 100); do grep -q READY "$OUT/fixture.out" 2>/dev/null && break; sleep 0.05; done
    stops=() attaches=()
    for r in $(seq "$RUNS"); do
        line=$("$VMMAP" attach "$pid" --duration 200ms -i 0 -o "$OUT/attach.vmmap" 2>&1 | tail -1)
        stops+=("$(sed -n 's/.*one thread stopped \([0-9.]*\) ms.*/\1/p' <<<"$line")")
        attaches+=("$(sed -n 's/.* in \([0-9.]*\) ms, one thread.*/\1/p' <<<"$line")")
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
    stop=$(printf '%s\n' "${stops[@]}" | median)
    att=$(printf '%s\n' "${attaches[@]}" | median)
    printf '%-12s stopped %6.1f ms (runs: %s)  attach %6.1f ms\n' "$label threads" "$stop" "${stops[*]}" "$att"
    echo "STOP threads=$n stop_ms=$stop attach_ms=$att"
    if [ "$n" = 100 ] && awk -v s="$stop" 'BEGIN {exit !(s >= 50)}'; then
        echo "WARNING: the target was stopped $stop ms with 100 threads (target: under 50 ms)"
    fi
done

if [ "${OVERHEAD_N}" != 0 ]; then
    command -v heaptrack >/dev/null && command -v gdb >/dev/null \
        || die "heaptrack -p needs heaptrack and gdb (apt-get install -y heaptrack gdb)"
    build_fixture alloc_bench -g -Wall -pthread
    build_fixture typical_mix -g -Wall -pthread
    me=$ROOT/bench/attach.sh
    for w in stress typical; do
        workload "$w"
        echo "== $w: ${WORKLOAD[*]##*/} (ROUNDS=$ROUNDS, after a warm-up round)"
        res=$(python3 "$ROOT/bench/rounds.py" --own-wall "$ROUNDS" "attach-$w" -- \
            "plain=bash $me --round plain $w" \
            "vmmap=bash $me --round vmmap $w" \
            "heaptrack=bash $me --round heaptrack $w")
        printf '%s\n' "$res"
        ratio=$(sed -n 's/^RATIO [^ ]* vmmap=\([0-9.]*\).*/\1/p' <<<"$res")
        target=$([ "$w" = stress ] && echo 2.0 || echo 1.10)
        if [ -z "$ratio" ] || awk -v r="$ratio" -v t="$target" 'BEGIN {exit !(r > t)}'; then
            echo "WARNING: $w attached x${ratio:-?} (target: at most x$target, as vmmap run)"
        fi
    done
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
