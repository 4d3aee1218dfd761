"""What `derive list` shows: every alias and family with its parameters and domain."""
from __future__ import annotations

from .core import ALIASES, FAMILIES


def catalogue() -> list[dict]:
    entries = []
    for alias in ALIASES.values():
        family = FAMILIES[alias.family]
        entries.append({
            "name": alias.name, "kind": "alias", "family": family.name, "summary": alias.title,
            "domain": family.domain,
            "params": [{"name": p.name, "default": alias.defaults.get(p.name, p.default), "help": p.help}
                       for p in family.params],
        })
    for family in FAMILIES.values():
        entries.append({
            "name": family.name, "kind": "family", "family": family.name, "summary": family.summary,
            "domain": family.domain,
            "params": [{"name": p.name, "default": p.default, "help": p.help} for p in family.params],
        })
    return entries
