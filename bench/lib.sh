# bench/lib.sh — what the benchmark scripts share; sourced, never run:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Sets ROOT (the checkout) and VMMAP (the release binary).
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VMMAP=$ROOT/target/release/vmmap

die() { printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# build_fixture NAME [GCC_FLAGS...]: bench/NAME.c -> target/bench/NAME.
# The test fixtures' folder is on the include path: bench programs share
# its headers (wait_sigterm.h) rather than copies of them.
build_fixture() {
    local name=$1
    shift
    mkdir -p "$ROOT/target/bench"
    gcc -O2 -I "$ROOT/crates/vmmap-cli/tests/fixtures" "$@" \
        -o "$ROOT/target/bench/$name" "$ROOT/bench/$name.c" \
        || die "gcc failed on bench/$name.c"
}

# build_vmmap [CARGO_ARGS...]: the release vmmap (and what else is asked).
build_vmmap() {
    (cd "$ROOT" && cargo build --release -q -p vmmap "$@") || die "cargo build --release failed"
}

# wait_ready FILE PID NAME SECONDS: prints the first line of FILE that
# starts with READY, once PID has written it; dies (after showing FILE) if
# PID exits first, or when SECONDS pass. Call it as `line=$(wait_ready ...)`
# so that `set -e` stops the script when it dies.
wait_ready() {
    local file=$1 pid=$2 name=$3 secs=$4 line="" i
    for ((i = 0; i < secs * 10; i++)); do
        line=$(grep -m1 '^READY' "$file" || true)
        if [[ -n $line ]]; then
            printf '%s\n' "$line"
            return
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; die "$name exited before READY"; }
        sleep 0.1
    done
    die "$name did not print READY within $secs s"
}

# The fixtures run_fixture started and the files to remove, for the
# EXIT trap it sets.
BENCH_PIDS=()
BENCH_FILES=()
bench_cleanup() {
    local p
    for p in "${BENCH_PIDS[@]+"${BENCH_PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; done
    rm -f "${BENCH_FILES[@]+"${BENCH_FILES[@]}"}"
}

# run_fixture SECONDS NAME ARGS...: runs target/bench/NAME ARGS in the
# background, its output to a temporary file, and waits for its READY line.
# Sets FX (its pid) and READY_LINE; the EXIT trap kills it.
run_fixture() {
    local secs=$1 name=$2 out
    shift 2
    out=$(mktemp "/tmp/$name-bench.XXXXXX")
    BENCH_FILES+=("$out")
    trap bench_cleanup EXIT
    "$ROOT/target/bench/$name" "$@" >"$out" 2>&1 &
    FX=$!
    BENCH_PIDS+=("$FX")
    READY_LINE=$(wait_ready "$out" "$FX" "$name" "$secs")
}

# start_memfill SIZE_MIB: the fixture of find.sh and strings.sh — SIZE MiB
# of text-like data in one region of bench/memfill, the same bytes in
# target/bench/memfill-SIZE.bin (read once so the page cache is warm).
# Sets FX, ADDR (the region) and DUMP (the file).
start_memfill() {
    local size=$1
    build_fixture memfill
    build_vmmap
    DUMP=$ROOT/target/bench/memfill-$size.bin
    run_fixture 300 memfill "$size" "$DUMP"
    ADDR=$(sed -n 's/.*addr=\(0x[0-9a-f]*\).*/\1/p' <<<"$READY_LINE")
    cat "$DUMP" >/dev/null
}
