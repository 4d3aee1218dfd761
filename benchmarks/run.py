"""Speed figures for this machine, against the targets of the issues.

    python3 benchmarks/run.py [--repeat 5]

Each command runs as a fresh process (a cold start, as a user sees it); the
figure is the median wall time over the repeats.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(command: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as out:
        cases = [
            ("derive build (all sheets, PDFs included)", [python, "cli.py", "build", "--out", out], 3.0),
            ("derive solve 1b --format json (cold)", [python, "cli.py", "solve", "1b", "--format", "json"], 1.0),
            ("derive solve ring-nll -p N=1000000 (cold)",
             [python, "cli.py", "solve", "ring-nll", "-p", "N=1000000", "-p", "assignment=1", "--format", "json"], None),
        ]
        print(f"{'what':<48}{'median s':>10}{'target s':>10}  verdict")
        worst = 0
        for name, command, target in cases:
            seconds = timed(command, args.repeat)
            verdict = "-" if target is None else ("ok" if seconds < target else "SLOW")
            worst |= verdict == "SLOW"
            print(f"{name:<48}{seconds:>10.3f}{'' if target is None else f'{target:.1f}':>10}  {verdict}")
    # The transfer matrix alone, in process: the target is for the computation, not Python's start-up.
    sys.path.insert(0, str(ROOT))
    import sympy as sp
    from derivations.ring import log_partition_eigen
    from derivations import solve
    start = time.perf_counter()
    for _ in range(args.repeat):
        log_partition_eigen([-1, 0, 1], sp.Integer(1), 10**6)
    eigen = (time.perf_counter() - start) / args.repeat
    solve("ring-nll", {"N": "999999", "assignment": "1"})  # warm the symbolic cache
    start = time.perf_counter()
    for _ in range(args.repeat):
        solve("ring-nll", {"N": "1000000", "assignment": "1"})
    derive_time = (time.perf_counter() - start) / args.repeat
    for name, seconds in (("ring-nll N=10^6: ln Z by eigenvalues", eigen),
                          ("ring-nll N=10^6: derivation with checks, in process", derive_time)):
        verdict = "ok" if seconds < 0.5 else "SLOW"
        worst |= verdict == "SLOW"
        print(f"{name:<48}{seconds:>10.3f}{0.5:>10.1f}  {verdict}")
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
