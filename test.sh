#!/usr/bin/env bash
# The test command (README, "Test"; CI's .ci/run calls it): on a fresh
# Debian or Ubuntu machine with Rust, installs what the tests run (system
# packages, the browser test's npm packages), then checks the format, the
# lints, every test of the workspace and the fuzz targets' build. A test
# whose tool is missing fails; no test fetches anything itself.
#
# Usage: ./test.sh [ARGS FOR cargo test...]   e.g. ./test.sh -- tui::
set -euo pipefail
cd "$(dirname "$0")"

export DEBIAN_FRONTEND=noninteractive
# apt-get as root, or through sudo for a developer's account.
if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v c++ >/dev/null || need+=(g++)  # libfuzzer-sys builds libFuzzer; the agent's C++ test
command -v nm >/dev/null || need+=(binutils)  # the agent's stack tests read symbol ranges
command -v pmap >/dev/null || need+=(procps)
command -v setpriv >/dev/null || need+=(util-linux)
command -v mknod >/dev/null && command -v mount >/dev/null || need+=(coreutils mount)  # the output tests: device nodes, FIFOs, a small tmpfs
command -v tmux >/dev/null || need+=(tmux)  # the interactive view's end-to-end tests
command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)  # the metrics tests
command -v curl >/dev/null || need+=(curl)  # serve's TLS and unix socket tests
command -v strace >/dev/null || need+=(strace)  # metrics and serve must never call ptrace; attach refuses a traced process
command -v systemd-analyze >/dev/null || need+=(systemd)  # verifies contrib/systemd/vmmap-serve.service
command -v heaptrack >/dev/null || need+=(heaptrack)  # the trace analysis cross-check
command -v sqlite3 >/dev/null || need+=(sqlite3)  # temporary allocations against heaptrack's on a real program
command -v man >/dev/null && command -v groff >/dev/null || need+=(man-db groff-base)  # the man page check
[ -x /usr/bin/chromium ] || need+=(chromium)  # the HTML report's browser test; its allocators (tests/integration/chromium.rs)
command -v node >/dev/null || need+=(nodejs)  # drives chromium (playwright-core) and html-validate; the V8 tests
command -v npm >/dev/null || need+=(npm)
# The runtime tests: real JVM, Go and CPython processes (node above), and C
# programs with each native allocator preloaded or linked in.
command -v java >/dev/null && command -v jcmd >/dev/null && command -v javac >/dev/null || need+=(default-jdk-headless)  # jcmd: NMT, the GC tables' oracle; javac: the JVM attach test
command -v go >/dev/null || need+=(golang-go)
command -v python3 >/dev/null || need+=(python3)
/usr/bin/python3 -c "import numpy" 2>/dev/null || need+=(python3-numpy)  # numpy arrays as glibc chunks the kernel split
command -v redis-server >/dev/null || need+=(redis-server)  # a real program linked with jemalloc under vmmap run
for lib in libjemalloc.so.2:libjemalloc2 libjemalloc.a:libjemalloc-dev libtcmalloc.so.4:libgoogle-perftools4 libmimalloc.so.2:libmimalloc2.0; do
    ls /usr/lib/*/"${lib%%:*}" >/dev/null 2>&1 || need+=("${lib#*:}")
done
# The real programs' suite (tests/integration/real_programs.rs) runs the
# Debian packages' binaries in /usr/bin, whatever else comes first in PATH.
for tool in redis-server:redis-server redis-benchmark:redis-tools redis-cli:redis-tools sqlite3:sqlite3 \
    git:git node:nodejs perl:perl xz:xz-utils python3:python3 gcc:gcc g++:g++ java:default-jdk-headless; do
    [ -x /usr/bin/"${tool%%:*}" ] || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is missing: this machine has no Rust toolchain (https://rustup.rs)" >&2; exit 1; }

# The HTML report's browser test drives chromium with playwright-core and
# validates with html-validate, at the versions package-lock.json pins. The
# test itself never installs them (a test must not touch the network).
browser=crates/vmmap-cli/tests/browser
if ! [ "$browser/node_modules/.installed" -nt "$browser/package-lock.json" ]; then
    echo "== npm ci in $browser"
    (cd "$browser" && npm ci --no-audit --no-fund --prefer-offline >/dev/null)
    touch "$browser/node_modules/.installed"
fi

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked "$@"
echo "== fuzz targets build"
(cd fuzz && cargo check --locked --quiet --bins --examples)
