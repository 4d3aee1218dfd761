"""Old against new: the four speed figures of two checkouts, measured taking turns.

    python3 benchmarks/ab.py OLD_CHECKOUT NEW_CHECKOUT [--rounds 5]

Each round runs every command once in the old checkout, then once in the new one (and the
next round the other way round), each as a fresh process writing into a new directory:
this machine's speed drifts by 10-20% over minutes, and taking turns lets the drift hit
both alike. Prints the median wall time of each and the new/old ratio; exits 1 when a
figure is more than 10% slower.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "build": ["build", "--out", "{out}"],
    "cold solve 1b": ["solve", "1b", "--format", "json"],
    "verify --variants 1000": ["verify", "--variants", "1000"],
    "variants --count 50": ["variants", "--seed", "7", "--count", "50", "--out", "{out}/v"],
}


def timed(checkout: Path, arguments: list[str]) -> float:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "cli.py"] + [a.replace("{out}", out) for a in arguments]
        start = time.perf_counter()
        subprocess.run(command, cwd=checkout, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    times: dict[tuple[str, str], list[float]] = {}
    for round_number in range(args.rounds):
        order = [("old", args.old), ("new", args.new)]
        if round_number % 2:
            order.reverse()
        for name, arguments in COMMANDS.items():
            for side, checkout in order:
                times.setdefault((name, side), []).append(timed(checkout, arguments))
    print(f"{'figure':<26}{'old s':>9}{'new s':>9}{'new/old':>9}")
    slower = False
    for name in COMMANDS:
        old, new = (statistics.median(times[(name, side)]) for side in ("old", "new"))
        slower |= new > 1.10 * old
        print(f"{name:<26}{old:>9.3f}{new:>9.3f}{new / old:>9.2f}")
    return 1 if slower else 0


if __name__ == "__main__":
    sys.exit(main())
