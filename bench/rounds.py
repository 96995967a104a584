#!/usr/bin/env python3
"""bench/rounds.py [--own-wall] ROUNDS LABEL -- NAME=CMD ...
(called by bench/snapshot.sh and bench/attach.sh)

Times commands in alternating rounds: each round runs every command once, in
order, output discarded, and divides each one's wall time and CPU time (user
plus system, from wait4) by the first command's (the reference) in that same
round. On a loaded machine a round's commands see the same load, so these
per-round ratios are steadier than ratios of separately taken medians. Prints
the median time and the median per-round ratio of every command, then one
line
    RATIO LABEL NAME=WALL ... cpu: NAME=CPU ...
The first round is a warm-up and is not counted.

With --own-wall, a command's wall time is the one it prints itself, the last
`wall=SECONDSs` in its output (a benchmark's timed part, without what a
round's command does around it: attaching a tool, say), and its lines
    FIGURE KEY=VALUE ...
are gathered too: their medians over the rounds (for a KEY whose values are
all 0 or 1, how many rounds had 1) are printed per command, and in the
RATIO line's end as NAME.KEY=VALUE. A round in which a command printed no
wall (its benchmark died) counts for none of its ratios, and is said so.
"""
import os
import re
import shlex
import statistics
import sys
import time


def run(argv, own_wall=False):
    """(wall, cpu, figures): figures as --own-wall reads them, else {}."""
    t0 = time.perf_counter()
    if own_wall:
        r, w = os.pipe()
        actions = [(os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_CLOSE, r)]
    else:
        actions = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
    out = b""
    if own_wall:
        os.close(w)
        with os.fdopen(r, "rb") as f:
            out = f.read()
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        sys.exit(f"rounds.py: error: '{shlex.join(argv)}' failed (wait status {status})")
    figures = {}
    if own_wall:
        text = out.decode(errors="replace")
        walls = re.findall(r"\bwall=([0-9.]+)s\b", text)
        wall = float(walls[-1]) if walls else None
        for line in text.splitlines():
            if line.startswith("FIGURE "):
                for kv in line.split()[1:]:
                    k, _, v = kv.partition("=")
                    try:
                        figures[k] = float(v)
                    except ValueError:
                        pass
    return wall, ru.ru_utime + ru.ru_stime, figures


def figure_text(values):
    """The median of a figure, or for a 0/1 flag how many rounds had it."""
    if all(v in (0.0, 1.0) for v in values):
        return f"{int(sum(values))}/{len(values)}"
    return f"{statistics.median(values):.1f}"


def main():
    args = sys.argv[1:]
    own_wall = args[:1] == ["--own-wall"]
    if own_wall:
        args = args[1:]
    if len(args) < 5 or args[2] != "--":
        sys.exit("usage: rounds.py [--own-wall] ROUNDS LABEL -- NAME=CMD NAME=CMD ...")
    rounds, label = int(args[0]), args[1]
    cmds = []
    for spec in args[3:]:
        name, _, cmd = spec.partition("=")
        cmds.append((name, shlex.split(cmd)))
    wall = {n: [] for n, _ in cmds}
    cpu = {n: [] for n, _ in cmds}
    wr = {n: [] for n, _ in cmds}
    cr = {n: [] for n, _ in cmds}
    figs = {n: {} for n, _ in cmds}
    missed = {n: 0 for n, _ in cmds}
    for r in range(rounds + 1):
        got = [run(argv, own_wall) for _, argv in cmds]
        if r == 0:
            continue
        (w0, c0, _) = got[0]
        for (n, _), (w, c, f) in zip(cmds, got):
            for k, v in f.items():
                figs[n].setdefault(k, []).append(v)
            if w is None or w0 is None:
                missed[n] += 1
                continue
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
        if not wr[n]:
            print(f"{n:<18} no round gave a figure")
            continue
        c = f"{med(cr[n]):>9.2f}x" if cr[n] else f"{'-':>10}"
        extra = " ".join(f"{k}={figure_text(v)}" for k, v in figs[n].items())
        if missed[n]:
            extra += f" ({missed[n]} of {rounds} rounds without a wall time)"
        print(f"{n:<18} {med(wall[n]) * 1e3:>10.2f} {med(cpu[n]) * 1e3:>8.2f} {med(wr[n]):>10.2f}x {c} {extra}".rstrip())
    names = [n for n, _ in cmds[1:]]
    line = f"RATIO {label} " + " ".join(f"{n}={med(wr[n]):.2f}" if wr[n] else f"{n}=-" for n in names)
    if all(cr[n] for n in names):
        line += " cpu: " + " ".join(f"{n}={med(cr[n]):.2f}" for n in names)
    line += "".join(f" {n}.{k}={figure_text(v)}" for n, _ in cmds for k, v in figs[n].items())
    print(line)


main()
