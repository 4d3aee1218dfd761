"""`derive verify`: every check of every family, over the seed and random parameters."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from .core import ALIASES, FAMILIES, solve


@dataclass
class VerifyRow:
    family: str
    cases: int = 0
    checks: int = 0
    failures: int = 0
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)  # "case: check" descriptions


def family_cases(family_name: str, count: int, seed: int) -> list[tuple[str, dict[str, str]]]:
    """The seed aliases of a family, then `count` generated parameter sets (reproducible from seed)."""
    cases = [(alias.name, {}) for alias in ALIASES.values() if alias.family == family_name]
    rng = random.Random(f"verify/{seed}/{family_name}")
    family = FAMILIES[family_name]
    cases += [(family_name, family.generate(rng)) for _ in range(count)]
    return cases


def verify_family(family_name: str, count: int, seed: int, advance=lambda: None) -> VerifyRow:
    row = VerifyRow(family_name)
    start = time.perf_counter()
    for problem, raw in family_cases(family_name, count, seed):
        row.cases += 1
        try:
            derivation = solve(problem, raw)
        except Exception as failure:  # a crash on valid input is a failure to report, not to hide
            row.failures += 1
            row.failed.append(f"{problem} {raw}: {type(failure).__name__}: {failure}")
            advance()
            continue
        for check in derivation.all_checks:
            row.checks += 1
            if not check.passed:
                row.failures += 1
                row.failed.append(f"{problem} {raw}: {check.name}: {check.detail}")
        advance()
    row.seconds = time.perf_counter() - start
    return row


def verify_all(count: int, seed: int, progress: bool = False, workers: int = 2) -> list[VerifyRow]:
    """Families run in parallel processes (the machine has two cores); rows keep registry order."""
    names = list(FAMILIES)
    if workers <= 1 or count < 50:  # small runs: process start-up would cost more than it saves
        return [verify_family(name, count, seed) for name in names]
    from concurrent.futures import ProcessPoolExecutor, as_completed
    import click
    rows: dict[str, VerifyRow] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(verify_family, name, count, seed): name for name in names}
        bar = click.progressbar(length=len(names), label="verifying families",
                                file=click.get_text_stream("stderr")) if progress else None
        for future in as_completed(futures):
            rows[futures[future]] = future.result()
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.render_finish()
    return [rows[name] for name in names]


def format_table(rows: list[VerifyRow]) -> str:
    lines = [f"{'family':<16}{'cases':>7}{'checks':>8}{'failures':>10}{'time (s)':>10}"]
    for row in rows:
        lines.append(f"{row.family:<16}{row.cases:>7}{row.checks:>8}{row.failures:>10}{row.seconds:>10.2f}")
    total = VerifyRow("total", sum(r.cases for r in rows), sum(r.checks for r in rows),
                      sum(r.failures for r in rows), sum(r.seconds for r in rows))
    lines.append(f"{total.family:<16}{total.cases:>7}{total.checks:>8}{total.failures:>10}{total.seconds:>10.2f}")
    for row in rows:
        lines.extend(f"FAILED {line}" for line in row.failed[:20])
    return "\n".join(lines)
