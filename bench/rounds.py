#!/usr/bin/env python3
"""bench/rounds.py ROUNDS LABEL -- NAME=CMD ... (called by bench/snapshot.sh)

Times commands in alternating rounds: each round runs every command once, in
order, output discarded, and divides each one's wall time and CPU time (user
plus system, from wait4) by the first command's (the reference) in that same
round. On a loaded machine a round's commands see the same load, so these
per-round ratios are steadier than ratios of separately taken medians. Prints
the median time and the median per-round ratio of every command, then one
line
    RATIO LABEL NAME=WALL ... cpu: NAME=CPU ...
The first round is a warm-up and is not counted.
"""
import os
import shlex
import statistics
import sys
import time


def run(argv):
    t0 = time.perf_counter()
    pid = os.posix_spawnp(
        argv[0],
        argv,
        os.environ,
        file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)],
    )
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        sys.exit(f"rounds.py: error: '{shlex.join(argv)}' failed (wait status {status})")
    return wall, ru.ru_utime + ru.ru_stime


def main():
    rounds, label = int(sys.argv[1]), sys.argv[2]
    if sys.argv[3] != "--" or len(sys.argv) < 6:
        sys.exit("usage: rounds.py ROUNDS LABEL -- NAME=CMD NAME=CMD ...")
    cmds = []
    for spec in sys.argv[4:]:
        name, _, cmd = spec.partition("=")
        cmds.append((name, shlex.split(cmd)))
    wall = {n: [] for n, _ in cmds}
    cpu = {n: [] for n, _ in cmds}
    wr = {n: [] for n, _ in cmds}
    cr = {n: [] for n, _ in cmds}
    for r in range(rounds + 1):
        got = [run(argv) for _, argv in cmds]
        if r == 0:
            continue
        (w0, c0) = got[0]
        for (n, _), (w, c) in zip(cmds, got):
            wall[n].append(w)
            cpu[n].append(c)
            wr[n].append(w / w0)
            # CPU time is counted in scheduler ticks' worth of precision
            # at worst; a zero reference gives no ratio for the round.
            if c0 > 0:
                cr[n].append(c / c0)
    med = statistics.median
    print(f"{'command':<18} {'median ms':>10} {'cpu ms':>8} {'wall ratio':>11} {'cpu ratio':>10}")
    for n, _ in cmds:
        c = f"{med(cr[n]):>9.2f}x" if cr[n] else f"{'-':>10}"
        print(f"{n:<18} {med(wall[n]) * 1e3:>10.2f} {med(cpu[n]) * 1e3:>8.2f} {med(wr[n]):>10.2f}x {c}")
    names = [n for n, _ in cmds[1:]]
    line = f"RATIO {label} " + " ".join(f"{n}={med(wr[n]):.2f}" for n in names)
    if all(cr[n] for n in names):
        line += " cpu: " + " ".join(f"{n}={med(cr[n]):.2f}" for n in names)
    print(line)


main()
