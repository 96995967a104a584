#!/bin/bash
# bench/coverage.sh — how much of a real program's resident memory vmmap
# gives a specific type: the share of resident bytes (Rss, summed over
# every mapping) that is not Private Data, for a shell, python3, python3
# with numpy arrays, java, node, a Go program, a Go program whose threads
# sit on goroutine stacks (with cgo and without), Debian's gofmt (a Go
# program without cgo, stripped) blocked reading a pipe, a C++ program
# (sources in bench/coverage/) and headless chromium on a local page
# (its browser, page renderer, GPU and network processes). One
# "COVERAGE name percent" line each, and a "STACKS" line saying how many threads have their own stack typed Stack
# with their TID and how many are named on the goroutine stack they are
# on; the target is >= 99% for every one with every thread's own stack
# found, and the script exits 1 if one misses it. Needs bash, python3, python3-numpy (for /usr/bin/python3),
# java (default-jdk-headless), node (nodejs), go (golang-go), g++ and
# chromium.
# VMMAP=path uses that binary rather than building a release one.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=$ROOT/bench/coverage
WORK=$(mktemp -d /tmp/vmmap-coverage.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    # chromium runs in a process group of its own, its children with it.
    if [ -n "${CHROMIUM:-}" ]; then
        kill -KILL -- "-$CHROMIUM" 2>/dev/null || true
        # Its processes write to the profile until they are gone.
        while pgrep -s "$CHROMIUM" > /dev/null; do sleep 0.1; done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
if [ -z "${VMMAP:-}" ]; then
    (cd "$ROOT" && cargo build --release -q -p vmmap)
    VMMAP=$ROOT/target/release/vmmap
fi

g++ -O1 -pthread -o "$WORK/hold-cxx" "$SRC/hold.cpp"
cp "$SRC/main.go" "$SRC/go.mod" "$WORK/"
(cd "$WORK" && GOCACHE=$WORK/gocache GOPATH=$WORK/gopath GOTOOLCHAIN=local CGO_ENABLED=0 go build -o hold-go .)
for cgo in 0 1; do
    (cd "$ROOT/crates/vmmap-cli/tests/fixtures/gothreads" && GOCACHE=$WORK/gocache GOPATH=$WORK/gopath \
        GOTOOLCHAIN=local CGO_ENABLED=$cgo go build -o "$WORK/gothreads-cgo$cgo" .)
done

# start NAME COMMAND...: runs it with stdout to a file, waits for "ready".
start() {
    local name=$1
    shift
    "$@" > "$WORK/$name.out" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 600); do grep -q ready "$WORK/$name.out" && return; sleep 0.1; done
    echo "$name never got ready: $(cat "$WORK/$name.out")" >&2
    exit 1
}

start shell bash -c 'x=$(seq 1 100000); y=${x//1/one}; echo ready ${#y}; read -r _ < /dev/zero; sleep 3600'
start python3 python3 "$SRC/hold.py"
# Debian's numpy is for Debian's python3.
start numpy /usr/bin/python3 "$SRC/hold_numpy.py"
start java java -Xms64m -Xmx256m "$SRC/Hold.java"
start node node "$SRC/hold.js"
start go "$WORK/hold-go"
start go-threads "$WORK/gothreads-cgo0"
start go-threads-cgo "$WORK/gothreads-cgo1"
# A Go program as Debian ships it (golang-go's gofmt: no cgo, stripped of
# .symtab), blocked reading a pipe that stays open.
mkfifo "$WORK/gofmt-in"
"$(go env GOROOT)/bin/gofmt" < "$WORK/gofmt-in" > /dev/null 2>&1 &
PIDS+=($!)
exec 9> "$WORK/gofmt-in"
sleep 1
start cxx "$WORK/hold-cxx"

# chromium prints no ready line: its page holds some 20 MiB of JavaScript
# objects, and the page's renderer is the one that has most resident.
cat > "$WORK/page.html" <<'HTML'
<!doctype html><title>hold</title><p>hold</p><script>
window.held = [];
for (let i = 0; i < 400000; i++) window.held.push({ i, s: 'x' + i });
</script>
HTML
setsid chromium --headless=new --no-sandbox --disable-gpu --no-first-run --remote-debugging-port=0 \
    --user-data-dir="$WORK/chromium-profile" "file://$WORK/page.html" > "$WORK/chromium.out" 2>&1 &
CHROMIUM=$!
sleep 10
# chromium_pid PATTERN: of chromium's processes whose command line has
# PATTERN, the one with the largest Rss (WebUI renderers left out).
chromium_pid() {
    for p in $(pgrep -s "$CHROMIUM" -f -- "$1"); do
        grep -qa -- --top-chrome-webui "/proc/$p/cmdline" && continue
        echo "$(awk '/^VmRSS/ {print $2}' "/proc/$p/status") $p"
    done | sort -n | tail -1 | cut -d' ' -f2
}

fail=0
names=(shell python3 numpy java node go go-threads go-threads-cgo go-debian cxx
    chromium-browser chromium-renderer chromium-gpu chromium-network)
PIDS+=("$CHROMIUM" "$(chromium_pid --type=renderer)" "$(chromium_pid --type=gpu-process)"
    "$(chromium_pid network.mojom.NetworkService)")
for i in "${!names[@]}"; do
    pid=${PIDS[$i]}
    # The shell's pid is bash's own (its children are elsewhere).
    "$VMMAP" "$pid" --json > "$WORK/${names[$i]}.json"
    python3 - "$WORK/${names[$i]}.json" "${names[$i]}" <<'PY' || fail=1
import json, sys
snap = json.load(open(sys.argv[1]))
total = private = 0
left = []
for r in snap["regions"]:
    for v in r.get("sub_blocks") or [r]:
        rss = v["smaps"].get("Rss", 0)
        total += rss
        if v["type"] == "private_data":
            private += rss
            if rss:
                left.append((rss, v["start"], v["perms"], v["path"]))
share = 100.0 * (1 - private / total) if total else 100.0
print(f"COVERAGE {sys.argv[2]:8} {share:6.2f}%  of {total >> 10} KiB resident; Private Data {private >> 10} KiB"
      + (f" (largest: {sorted(left)[-1][0] >> 10} KiB at {sorted(left)[-1][1]})" if left else ""))
# Every thread: its own stack typed Stack with its TID (a region, or a
# part of the Go arenas: an M's g0 without cgo), and whether it is named
# on the goroutine stack (a part of the Go arenas) it is on.
parts = [p for r in snap["regions"] for v in r.get("sub_blocks") or [r]
         for p in v.get("parts") or []]
own = ({r["tid"] for r in snap["regions"] if r["type"] == "stack" and r.get("tid")}
       | {p["tid"] for p in parts if p.get("type") == "stack" and p.get("tid")})
parts = [p["details"] for p in parts if p["details"].startswith("goroutine")]
threads = [t["tid"] for t in snap["process"]["threads"]]
named = [t for t in threads if any(f"thread {t} (" in d for d in parts)]
print(f"STACKS   {sys.argv[2]:8} {len(threads)} threads: {len([t for t in threads if t in own])} own stacks typed Stack with their TID; "
      f"{len(named)} named on the goroutine stack they are on")
sys.exit(0 if share >= 99.0 and all(t in own for t in threads) else 1)
PY
done
exit $fail
