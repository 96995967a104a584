#!/usr/bin/env bash
# bench/snapshot.sh [N ...]   (THREAD_CASES="MAPS:IDLE:BUSY ..." for thread cases)
#
# Cost of one full typed snapshot (`vmmap PID`: Summary + Details) of a process
# with many mappings, against the references, as ratios (machines are noisy:
# ratios, not absolute times, are what to compare).
#
# For each case N (default: 100 60000) it starts maps_fixture with N
# non-mergeable mappings and times, with hyperfine (-N, output discarded):
#   cat /proc/PID/smaps   the floor: reading the kernel text once
#   pmap -XX PID          the closest existing tool
#   vmmap PID             full typed text output (Summary plus Details)
#   vmmap PID --json      extra row
# and prints median ms and the ratio of each median to the floor's median.
# It also measures vmmap's peak RSS and prints it as a ratio to the size of
# the smaps text, saves the 60,000-mapping smaps to target/bench/smaps-60k.txt
# for the criterion benchmark (smaps_parse), and ends with one line per case:
#   RATIO n=60000 pmap=6.20 vmmap=1.31 vmmap_json=1.40 vmmap_peak_rss_over_smaps=0.55
# Cases of 10,000 mappings or more are checked against the targets (vmmap at
# most 1.5x cat smaps, peak RSS at most 2x the smaps text): a miss prints a
# WARNING line but does not change the exit status (0 unless something broke).
#
# Environment:
#   RUNS=10           hyperfine runs per command (after 2 warm-up runs)
#   INSTALL=1         as root, apt-get install missing hyperfine/procps
#   TIME_BIN=PATH     GNU time for peak RSS (default /usr/bin/time; when it is
#                     missing, a python3 getrusage wrapper is used)
#
# A case may also be N:MIB, which adds a fully touched MIB MiB anonymous
# region to the fixture (maps_fixture's third argument).
#
# Thread cases (THREAD_CASES, default "200:30:0 0:0:256") run
# bench/threads_fixture.c with MAPS:IDLE:BUSY (extra mappings, threads blocked
# in pause(), threads spinning in user space), in a session of its own as a
# service runs (the scheduler's autogroups then share the CPUs between it and
# vmmap, not one share per busy thread), and time
#   cat /proc/PID/smaps, vmmap PID, vmmap PID --no-ptrace, vmmap PID --json
# as ratios to cat smaps, ending with lines such as
#   RATIO threads=0:0:256 vmmap=1.90 vmmap_no_ptrace=1.85 vmmap_json=2.10 vmmap_over_no_ptrace=1.03
# A case with busy threads is checked against the target (vmmap at most 1.5x
# vmmap --no-ptrace: running threads' stacks are found without stopping them).
# THREAD_CASES="" skips them.
#
# First of all, the targets (TARGETS=0 skips them), timed in alternating
# rounds by bench/rounds.py (each round runs every command once; the ratio
# to cat smaps is taken within the round, then the median over ROUNDS=15
# rounds: steadier than ratios of medians on a loaded machine). Commands:
#   cat /proc/PID/smaps (the reference), pmap -XX PID, vmmap PID, and
#   vmmap --version (vmmap_start: the start and exit of the binary alone,
#   the part of vmmap's time that does not depend on the process)
# on threads_fixture with 30 idle threads and TARGET_SMALL="200 800" extra
# mappings (about 290 and 890 in all, as an ordinary process: a python
# program, a browser's renderer) and on maps_fixture with 60,000 mappings,
# ending with one line per target:
#   RATIO target=small maps=291 threads=31 pmap=3.40 vmmap=1.45 vmmap_start=0.90 (vmmap at most 1.5)
#   RATIO target=60000 pmap=... vmmap=1.15 vmmap_start=... (vmmap at most 1.2)
#   RATIO target=60000-cpu pmap=... vmmap=1.40 ... (at most 1.5, user+system time)
# A miss prints a WARNING line (the exit status stays 0). ONLY_TARGETS=1 runs
# the targets alone (no hyperfine cases, no thread cases, no smaps capture).
# VMMAP_BIN=PATH times that vmmap binary instead of building one (to compare
# builds).
# Kills only the fixture processes it started, by PID.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
note() { printf '== %s\n' "$*"; }

FIXTURE_SRC=$ROOT/bench/maps_fixture.c
OUT=$ROOT/target/bench
FIXTURE=$OUT/maps_fixture
VMMAP=${VMMAP_BIN:-$ROOT/target/release/vmmap}
ONLY_TARGETS=${ONLY_TARGETS:-0}
SMAPS_CAPTURE=$OUT/smaps-60k.txt
CAPTURE_N=60000
TARGET_MIN_N=10000  # cases this large are checked against the 1.5x / 2x targets
RUNS=${RUNS:-10}
ROUNDS=${ROUNDS:-15}
TARGETS=${TARGETS:-1}
read -r -a TARGET_SMALL <<<"${TARGET_SMALL-200 800}"

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer (got '$RUNS')"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer (got '$ROUNDS')"
for m in "${TARGET_SMALL[@]+"${TARGET_SMALL[@]}"}"; do
    [[ $m =~ ^[0-9]+$ ]] || die "bad TARGET_SMALL entry '$m': expected a number of mappings"
done
CASES=("$@")
[[ ${#CASES[@]} -gt 0 ]] || CASES=(100 60000)
[[ $ONLY_TARGETS == 1 ]] && CASES=()
for c in "${CASES[@]+"${CASES[@]}"}"; do
    [[ $c =~ ^[1-9][0-9]*(:[0-9]+)?$ ]] || die "bad case '$c': expected N or N:MIB (e.g. 60000 or 100:512)"
done
THREAD_CASES=${THREAD_CASES-200:30:0 0:0:256}
[[ $ONLY_TARGETS == 1 ]] && THREAD_CASES=""
read -r -a TCASES <<<"$THREAD_CASES"
for c in "${TCASES[@]+"${TCASES[@]}"}"; do
    [[ $c =~ ^[0-9]+:[0-9]+:[0-9]+$ ]] || die "bad thread case '$c': expected MAPS:IDLE:BUSY (e.g. 200:30:0)"
done
THREADS_SRC=$ROOT/bench/threads_fixture.c
THREADS_FX=$OUT/threads_fixture

# --- tools ----------------------------------------------------------------
missing=()
command -v hyperfine >/dev/null 2>&1 || missing+=(hyperfine)
command -v pmap >/dev/null 2>&1 || missing+=(procps)
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ ${INSTALL:-0} == 1 && $(id -u) == 0 ]]; then
        note "installing ${missing[*]} (INSTALL=1)"
        apt-get update
        apt-get install -y hyperfine procps
    else
        printf 'snapshot.sh: error: missing %s (needed: hyperfine, and pmap from procps).\n' "${missing[*]}" >&2
        printf 'Install them with:\n    apt-get install -y hyperfine procps\n' >&2
        printf '(or, as root, rerun with INSTALL=1 to install them automatically)\n' >&2
        exit 1
    fi
    command -v hyperfine >/dev/null 2>&1 && command -v pmap >/dev/null 2>&1 ||
        die "hyperfine or pmap still missing after apt-get install"
fi
for t in gcc cargo python3; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found (needed to build the fixture / vmmap, or to read hyperfine's JSON)"
done

# --- cleanup: only what this script started ---------------------------------
FX_PIDS=()
TMPDIR_BENCH=$(mktemp -d "${TMPDIR:-/tmp}/vmmap-bench.XXXXXX")
cleanup() {
    local p
    for p in "${FX_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${FX_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    FX_PIDS=()
    rm -rf "$TMPDIR_BENCH"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build ----------------------------------------------------------------
mkdir -p "$OUT"
note "building $FIXTURE from $FIXTURE_SRC"
gcc -O2 -o "$FIXTURE" "$FIXTURE_SRC" || die "gcc failed on $FIXTURE_SRC"
gcc -O2 -pthread -o "$THREADS_FX" "$THREADS_SRC" || die "gcc failed on $THREADS_SRC"
if [[ -z ${VMMAP_BIN:-} ]]; then
    note "building vmmap (cargo build --release -p vmmap)"
    (cd "$ROOT" && cargo build --release -p vmmap) || die "cargo build --release -p vmmap failed"
fi
[[ -x $VMMAP ]] || die "vmmap binary not found at $VMMAP after the build"

# --- helpers --------------------------------------------------------------
# start_fixture N MIB -> sets FX_PID and FX_MADE (waits for "READY pid n")
start_fixture() {
    local n=$1 mib=$2 ready=$TMPDIR_BENCH/ready.$1 line
    : >"$ready" # exists before the first grep of wait_ready, whoever runs first
    "$FIXTURE" "$n" - "$mib" >"$ready" 2>&1 &
    FX_PID=$!
    FX_PIDS+=("$FX_PID")
    line=$(wait_ready "$ready" "$FX_PID" "maps_fixture $n" 120)
    read -r _ ready_pid FX_MADE <<<"$line"
    [[ $ready_pid == "$FX_PID" ]] || die "maps_fixture printed pid $ready_pid, expected $FX_PID"
    [[ $FX_MADE -ge $n ]] || die "maps_fixture made only $FX_MADE of $n mappings (vm.max_map_count is $(cat /proc/sys/vm/max_map_count))"
}

# time_commands JSON LOG WHAT HYPERFINE_ARGS...: RUNS timed runs of each
# command to JSON; on failure, the end of the LOG and an error naming WHAT.
time_commands() {
    local json=$1 log=$2 what=$3
    shift 3
    if ! hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$json" --style basic "$@" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "hyperfine failed for $what (log: $log)"
    fi
}

# median_table JSON: each command of a hyperfine JSON with its median,
# standard deviation and fastest run, and its ratio to `cat smaps`.
median_table() {
    python3 - "$1" <<'EOF'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
floor = {r["command"]: r["median"] for r in res}["cat smaps"]
print(f"{'command':<18} {'median ms':>10} {'stddev ms':>10} {'min ms':>9} {'ratio':>7}")
for r in res:
    print(f"{r['command']:<18} {r['median']*1e3:>10.2f} {(r.get('stddev') or 0)*1e3:>10.2f} "
          f"{r['min']*1e3:>9.2f} {r['median']/floor:>6.2f}x")
EOF
}

# show_table: prints $table but its RATIO line, which goes to SUMMARY and
# to ratio_line.
show_table() {
    printf '%s\n' "$table" | grep -v '^RATIO '
    ratio_line=$(printf '%s\n' "$table" | grep '^RATIO ')
    SUMMARY+=("$ratio_line")
}

stop_fixture() {
    local pid=$1 keep=() p
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${FX_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    FX_PIDS=("${keep[@]+"${keep[@]}"}")
}

# Peak RSS: GNU time's %M where it exists, else python3's
# getrusage(RUSAGE_CHILDREN).  The latter can read high: the kernel carries a
# forked child's high-water mark across exec, so its floor is the python
# process's own RSS (measured below with `true` and printed).
TIME_BIN=${TIME_BIN:-/usr/bin/time}
if [[ -x $TIME_BIN ]] && "$TIME_BIN" -f %M -o /dev/null true >/dev/null 2>&1; then
    RSS_TOOL="$TIME_BIN -f %M"
else
    RSS_TOOL="python3 resource.getrusage(RUSAGE_CHILDREN)"
fi

# rss_once CMD... -> peak RSS of one run of CMD in KiB, output discarded
rss_once() {
    local f=$TMPDIR_BENCH/rss k
    if [[ $RSS_TOOL != python3* ]]; then
        "$TIME_BIN" -f %M -o "$f" "$@" >/dev/null || die "failed: $*"
        k=$(tail -n1 "$f")
    else
        k=$(python3 -c '
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@") || die "failed: $*"
    fi
    [[ $k =~ ^[0-9]+$ ]] || die "could not read the peak RSS of $* (got '$k')"
    echo "$k"
}

# peak_rss_kib CMD... -> largest of 3 runs
peak_rss_kib() {
    local best=0 k i
    for i in 1 2 3; do
        k=$(rss_once "$@")
        if ((k > best)); then best=$k; fi
    done
    echo "$best"
}

if [[ $RSS_TOOL == python3* ]]; then
    RSS_TOOL="$RSS_TOOL (floor: $(rss_once true) KiB, the wrapper's own RSS; figures near it mean little)"
fi

# --- targets (alternating rounds) ----------------------------------------------
# start_threads MAPS IDLE BUSY -> sets TH_PID (waits for "READY pid n")
start_threads() {
    local ready=$TMPDIR_BENCH/ready.threads line="" i
    : >"$ready"
    setsid "$THREADS_FX" "$1" "$2" "$3" >"$ready" 2>&1 &
    TH_PID=$!
    FX_PIDS+=("$TH_PID")
    for ((i = 0; i < 600; i++)); do
        line=$(grep -m1 '^READY ' "$ready" || true)
        [[ -n $line ]] && break
        kill -0 "$TH_PID" 2>/dev/null || { cat "$ready" >&2; die "threads_fixture $* exited before READY"; }
        sleep 0.1
    done
    [[ -n $line ]] || die "threads_fixture $* did not print READY within 60 s"
    read -r _ ready_pid _ <<<"$line"
    [[ $ready_pid == "$TH_PID" ]] || die "threads_fixture printed pid $ready_pid, expected $TH_PID (setsid forked?)"
}

# target_rounds LABEL PID -> prints the table, appends the RATIO line to SUMMARY
target_rounds() {
    local label=$1 pid=$2 out
    "$VMMAP" "$pid" >/dev/null || die "'vmmap $pid' exited with status $?"
    out=$(python3 "$ROOT/bench/rounds.py" "$ROUNDS" "$label" -- \
        "cat_smaps=cat /proc/$pid/smaps" "pmap=pmap -XX $pid" "vmmap=$VMMAP $pid" \
        "vmmap_start=$VMMAP --version") ||
        die "timing failed for $label"
    printf '%s\n' "$out" | grep -v '^RATIO '
    TARGET_LINE=$(printf '%s\n' "$out" | grep '^RATIO ')
    SUMMARY+=("$TARGET_LINE")
}

# over LIMIT VALUE: true when VALUE > LIMIT
over() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[2]) > float(sys.argv[1]) else 1)' "$1" "$2"; }

SUMMARY=()
WARNINGS=()
if [[ $TARGETS == 1 ]]; then
    note "targets: $ROUNDS alternating rounds ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r))"
    for m in "${TARGET_SMALL[@]+"${TARGET_SMALL[@]}"}"; do
        start_threads "$m" 30 0
        pid=$TH_PID
        maps=$(wc -l <"/proc/$pid/maps")
        nthreads=$(ls "/proc/$pid/task" | wc -l)
        echo
        note "target small: threads_fixture $m 30 0, pid $pid, $maps mappings, $nthreads threads"
        target_rounds "target=small maps=$maps threads=$nthreads" "$pid"
        stop_fixture "$pid"
        v=$(sed -n 's/.* vmmap=\([0-9.]*\).*/\1/p' <<<"${TARGET_LINE%% cpu:*}")
        if over 1.5 "$v"; then WARNINGS+=("target small ($maps mappings): vmmap takes ${v}x cat smaps (target: at most 1.5x)"); fi
    done
    start_fixture 60000 0
    pid=$FX_PID
    echo
    note "target 60000: maps_fixture pid $pid, $(wc -l <"/proc/$pid/maps") mappings"
    target_rounds "target=60000" "$pid"
    stop_fixture "$pid"
    v=$(sed -n 's/.* vmmap=\([0-9.]*\).*/\1/p' <<<"${TARGET_LINE%% cpu:*}")
    c=$(sed -n 's/.* cpu:.* vmmap=\([0-9.]*\).*/\1/p' <<<"$TARGET_LINE")
    # the CPU figures get a line of their own: the third target
    SUMMARY[-1]="${TARGET_LINE%% cpu:*}"
    SUMMARY+=("RATIO target=60000-cpu ${TARGET_LINE#* cpu: }")
    if over 1.2 "$v"; then WARNINGS+=("target 60000: vmmap takes ${v}x cat smaps (target: at most 1.2x)"); fi
    if [[ -n $c ]] && over 1.5 "$c"; then WARNINGS+=("target 60000: vmmap uses ${c}x the CPU time of cat smaps (target: at most 1.5x)"); fi
fi

# --- cases ----------------------------------------------------------------
captured=0
[[ ${#CASES[@]} -gt 0 ]] && note "RUNS=$RUNS cases: ${CASES[*]} ($(nproc) CPUs, kernel $(uname -r))"

for c in "${CASES[@]+"${CASES[@]}"}"; do
    n=${c%%:*}
    mib=0
    [[ $c == *:* ]] && mib=${c#*:}
    start_fixture "$n" "$mib"
    pid=$FX_PID
    maps_lines=$(wc -l <"/proc/$pid/maps")
    smaps_bytes=$(wc -c <"/proc/$pid/smaps")
    echo
    note "case n=$n touch_mib=$mib: fixture pid $pid, $FX_MADE mappings created, $maps_lines in /proc/$pid/maps, smaps $smaps_bytes bytes"
    if [[ $n == "$CAPTURE_N" && $mib == 0 ]]; then
        cat "/proc/$pid/smaps" >"$SMAPS_CAPTURE"
        captured=1
        note "saved smaps to $SMAPS_CAPTURE ($(wc -c <"$SMAPS_CAPTURE") bytes)"
    fi

    # fail clearly (not inside hyperfine) when vmmap cannot read the fixture
    "$VMMAP" "$pid" >/dev/null || die "'vmmap $pid' exited with status $?"
    "$VMMAP" "$pid" --json >/dev/null || die "'vmmap $pid --json' exited with status $?"

    json=$OUT/hyperfine-$c.json
    log=$OUT/hyperfine-$c.log
    time_commands "$json" "$log" "case $c" \
        --command-name 'cat smaps' "cat /proc/$pid/smaps" \
        --command-name 'pmap -XX' "pmap -XX $pid" \
        --command-name 'vmmap' "$VMMAP $pid" \
        --command-name 'vmmap --json' "$VMMAP $pid --json"

    rss_kib=$(peak_rss_kib "$VMMAP" "$pid")
    table=$(median_table "$json" && python3 - "$json" "$n" "$rss_kib" "$smaps_bytes" <<'EOF'
import json, sys
path, n, rss_kib, smaps_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
med = {r["command"]: r["median"] for r in json.load(open(path))["results"]}
floor = med["cat smaps"]
rss_ratio = rss_kib * 1024 / smaps_bytes
print(f"vmmap peak RSS {rss_kib} KiB = {rss_ratio:.2f}x the smaps text ({smaps_bytes} bytes)")
print(f"RATIO n={n} pmap={med['pmap -XX']/floor:.2f} vmmap={med['vmmap']/floor:.2f} "
      f"vmmap_json={med['vmmap --json']/floor:.2f} vmmap_peak_rss_over_smaps={rss_ratio:.2f}")
EOF
    )
    stop_fixture "$pid"
    show_table
    # flag the targets: vmmap within 1.5x of cat smaps, peak RSS within 2x the
    # smaps text; they apply to large cases only (with a few hundred mappings
    # process start-up and the binary's own ~3 MiB RSS dominate both ratios)
    ((n >= TARGET_MIN_N)) || continue
    v=$(sed -n 's/.* vmmap=\([0-9.]*\) .*/\1/p' <<<"$ratio_line")
    r=$(sed -n 's/.*vmmap_peak_rss_over_smaps=\([0-9.]*\).*/\1/p' <<<"$ratio_line")
    if over 1.5 "$v"; then
        WARNINGS+=("n=$n: vmmap takes ${v}x cat smaps (target: at most 1.5x)")
    fi
    if over 2 "$r"; then
        WARNINGS+=("n=$n: vmmap peak RSS is ${r}x the smaps text (target: at most 2x)")
    fi
done

# --- thread cases -----------------------------------------------------------
for c in "${TCASES[@]+"${TCASES[@]}"}"; do
    IFS=: read -r tmaps tidle tbusy <<<"$c"
    ready=$TMPDIR_BENCH/ready.threads
    : >"$ready"
    setsid "$THREADS_FX" "$tmaps" "$tidle" "$tbusy" >"$ready" 2>&1 &
    pid=$!
    FX_PIDS+=("$pid")
    line=$(wait_ready "$ready" "$pid" "threads_fixture $c" 60)
    read -r _ ready_pid _ <<<"$line"
    [[ $ready_pid == "$pid" ]] || die "threads_fixture printed pid $ready_pid, expected $pid (setsid forked?)"
    echo
    note "thread case $c: pid $pid, $(ls "/proc/$pid/task" | wc -l) threads, $(wc -l <"/proc/$pid/maps") mappings"
    "$VMMAP" "$pid" >/dev/null || die "'vmmap $pid' exited with status $?"
    json=$OUT/hyperfine-threads-$c.json
    log=$OUT/hyperfine-threads-$c.log
    time_commands "$json" "$log" "thread case $c" \
        --command-name 'cat smaps' "cat /proc/$pid/smaps" \
        --command-name 'vmmap' "$VMMAP $pid" \
        --command-name 'vmmap --no-ptrace' "$VMMAP $pid --no-ptrace" \
        --command-name 'vmmap --json' "$VMMAP $pid --json"
    table=$(median_table "$json" && python3 - "$json" "$c" <<'EOF'
import json, sys
path, case = sys.argv[1], sys.argv[2]
med = {r["command"]: r["median"] for r in json.load(open(path))["results"]}
floor = med["cat smaps"]
print(f"RATIO threads={case} vmmap={med['vmmap']/floor:.2f} "
      f"vmmap_no_ptrace={med['vmmap --no-ptrace']/floor:.2f} "
      f"vmmap_json={med['vmmap --json']/floor:.2f} "
      f"vmmap_over_no_ptrace={med['vmmap']/med['vmmap --no-ptrace']:.2f}")
EOF
    )
    stop_fixture "$pid"
    show_table
    ((tbusy > 0)) || continue
    v=$(sed -n 's/.*vmmap_over_no_ptrace=\([0-9.]*\).*/\1/p' <<<"$ratio_line")
    if over 1.5 "$v"; then
        WARNINGS+=("threads=$c: vmmap takes ${v}x vmmap --no-ptrace (target: at most 1.5x)")
    fi
done

if [[ $captured == 0 && $ONLY_TARGETS != 1 ]]; then
    echo
    note "capturing a $CAPTURE_N-mapping smaps for the criterion benchmark"
    start_fixture "$CAPTURE_N" 0
    cat "/proc/$FX_PID/smaps" >"$SMAPS_CAPTURE"
    stop_fixture "$FX_PID"
    note "saved smaps to $SMAPS_CAPTURE ($(wc -c <"$SMAPS_CAPTURE") bytes)"
fi

echo
note "peak RSS measured with $RSS_TOOL; hyperfine JSON and logs in $OUT"
note "parser throughput on the captured file (criterion; cargo runs the bench in crates/vmmap-core,"
note "so give the file as an absolute path: a relative one is not found from there):"
echo "    cd $ROOT && VMMAP_SMAPS_FIXTURE=$SMAPS_CAPTURE cargo bench -p vmmap-core --bench smaps_parse"
for w in "${WARNINGS[@]+"${WARNINGS[@]}"}"; do
    echo "WARNING: $w"
done
echo
printf '%s\n' "${SUMMARY[@]}"
