#!/usr/bin/env bash
# Builds vmmap and its tracing agent and installs both, so that `vmmap run`
# (and the interactive view's Launch tab) find the agent without options:
#
#   PREFIX/bin/vmmap
#   PREFIX/lib/vmmap/libvmmap_agent.so   (found as ../lib/vmmap/ from the binary)
#   PREFIX/share/man/man1/vmmap*.1
#
# `cargo install` alone would bring the binary without the agent.
#
# Usage: ./install.sh [--prefix DIR] [--profile PROFILE] [--no-build]
#   --prefix   default /usr/local as root, else ~/.local
#   --profile  cargo profile to build (default release)
#   --no-build install what an earlier build of PROFILE left in target/
#              (packaging; the tests, whose running programs map the
#              agent that a rebuild would replace under them)
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" = 0 ]; then prefix=/usr/local; else prefix=$HOME/.local; fi
profile=release
build=1
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --profile) profile=${2:?--profile needs a name}; shift 2 ;;
        --profile=*) profile=${1#*=}; shift ;;
        --no-build) build=0; shift ;;
        -h | --help) sed -n '2,16s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$build" = 1 ]; then
    "${CARGO:-cargo}" build --locked --profile "$profile" -p vmmap -p vmmap-agent
fi
# Cargo's dev profile builds into target/debug; every other one into its name.
out=target/$([ "$profile" = dev ] && echo debug || echo "$profile")
if [ -n "${CARGO_TARGET_DIR:-}" ]; then out=$CARGO_TARGET_DIR/${out#target/}; fi

# The agent is loaded into programs vmmap runs, as root too: installed
# read-only for everyone but its owner, as the binary is.
install -d "$prefix/bin" "$prefix/lib/vmmap" "$prefix/share/man/man1"
install -m 0755 "$out/vmmap" "$prefix/bin/vmmap"
install -m 0644 "$out/libvmmap_agent.so" "$prefix/lib/vmmap/libvmmap_agent.so"
"$prefix/bin/vmmap" manpage --dir "$prefix/share/man/man1" >/dev/null
echo "installed $prefix/bin/vmmap and $prefix/lib/vmmap/libvmmap_agent.so"
