#!/bin/bash
# bench/sharing.sh [SIZE_MIB] — the added cost of exact sharing on a
# process with SIZE MiB resident (default 8192: 4 GiB private anonymous,
# 4 GiB shmem of which a forked child maps every other page), as a ratio
# to `cat /proc/PID/smaps` of the same process: `--sharing exact`
# (pagemap of every file and shared mapping) and, as root, `--sharing
# kpagecount` (plus a batched kpagecount read of every shared page's
# frame). The target is <= 2x (reading kpagecount with one pread per page
# costs about 19x). Also the combined report of the parent and its child
# (frame union as root). Frees the memory afterwards.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SIZE=${1:-8192}
RUNS=${RUNS:-5}
build_fixture sharefill
build_vmmap
run_fixture 300 sharefill "$SIZE"
CHILD=$(sed -n 's/.*child=\([0-9]*\).*/\1/p' <<<"$READY_LINE")
echo "target $FX: $(grep VmRSS /proc/$FX/status | tr -s ' ')"
[ -r /proc/kpagecount ] && echo "root: kpagecount readable" \
    || echo "not root: no kpagecount, the kpagecount case repeats exact"
hyperfine -N --output=pipe --warmup 1 --runs "$RUNS" --export-json "$ROOT/target/bench/sharing.json" \
    -n "cat smaps" "cat /proc/$FX/smaps" \
    -n "vmmap" "$VMMAP $FX -s --no-ptrace" \
    -n "vmmap exact" "$VMMAP $FX -s --no-ptrace --sharing exact" \
    -n "vmmap kpagecount" "$VMMAP $FX -s --no-ptrace --sharing $([ -r /proc/kpagecount ] && echo kpagecount || echo exact)" \
    -n "vmmap combined" "$VMMAP $FX $CHILD --no-ptrace" > /dev/null
python3 - "$ROOT/target/bench/sharing.json" <<'PY'
import json, sys
res = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
# The machine is shared: the median is the figure, the fastest run says
# what the code costs when nothing else runs.
for stat in ["median", "min"]:
    r = {k: v[stat] for k, v in res.items()}
    cat, fast, exact, kpc, comb = (r["cat smaps"], r["vmmap"], r["vmmap exact"],
                                   r["vmmap kpagecount"], r["vmmap combined"])
    print(f"[{stat}] cat smaps {cat*1000:.1f} ms, vmmap {fast*1000:.1f} ms, exact {exact*1000:.1f} ms, "
          f"kpagecount {kpc*1000:.1f} ms, combined {comb*1000:.1f} ms (parent and child)")
    print(f"RATIO sharing_exact_added_{stat} {(exact-fast)/cat:.2f}x cat smaps (target <= 2)")
    print(f"RATIO sharing_kpagecount_added_{stat} {(kpc-fast)/cat:.2f}x cat smaps (target <= 2)")
    print(f"RATIO sharing_exact_total_{stat} {exact/cat:.2f}x cat smaps")
    print(f"RATIO combined_two_processes_{stat} {comb/cat:.2f}x cat smaps")
PY
