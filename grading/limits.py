"""Bounds and time limits for everything that touches a user's text.

Hostile input is stopped twice: by static bounds before any SymPy object is built
(text length, digits, exponent size, nesting), and by a wall-clock limit around
every parse, simplification and evaluation. The limit is a SIGALRM interval timer
(the CLI is single-threaded and runs in the main thread on Linux); outside the main
thread, or where SIGALRM does not exist, the static bounds alone apply.
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time

MAX_ANSWER_CHARS = 1000     # a student answer
MAX_EQUATION_CHARS = 4000   # one display equation of an audited sheet
MAX_DIGITS = 40             # digits of one number literal
MAX_EXPONENT = 1000         # |k| of a numeric exponent
MAX_RESULT_DIGITS = 1000    # digits of an exact number built from literals (10**1000 is the edge)
MAX_DEPTH = 60              # nesting of the expression tree
MAX_NODES = 400             # nodes of the expression tree

PARSE_SECONDS = 2.0         # reading one answer or equation
JUDGE_SECONDS = 8.0         # judging one answer: evaluation, simplification and mistakes together
SIMPLIFY_SECONDS = 2.0      # sympy.simplify, an optional confirmation
MISTAKES_SECONDS = 4.0      # matching the catalogue of mistakes


class TimeLimit(Exception):
    """The work did not finish within its time limit."""


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_limit(seconds: float, what: str = "the computation"):
    """Raise TimeLimit inside the block once `seconds` of wall-clock time have passed.

    Nested limits keep the outer deadline: the inner timer never outlives it, and the
    outer timer is re-armed with what remains of it on the way out.
    """
    if not _can_alarm():
        yield
        return
    outer_remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()

    def expired(signum, frame):
        raise TimeLimit(f"{what} took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    delay = seconds if not outer_remaining else min(seconds, outer_remaining)
    signal.setitimer(signal.ITIMER_REAL, delay)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_remaining:
            left = outer_remaining - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))
