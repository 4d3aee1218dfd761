import sys
from pathlib import Path

# Tests run from a checkout: make cli.py and the packages importable without installing.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
