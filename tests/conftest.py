import sys
from pathlib import Path

# Tests run from a checkout: make cli.py and the packages importable without installing.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_derivations():
    """Every test starts with an empty derivation memo: many patch a family's code."""
    from derivations.core import forget_derivations
    forget_derivations()
    yield
