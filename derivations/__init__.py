"""Problem families: each module registers its families, seed aliases and exam problem."""
import importlib

from .core import ALIASES, EXAM, FAMILIES, Derivation, exam_problems, resolve, solve  # noqa: F401
from .values import ParameterError  # noqa: F401

# Importing a family module registers it; the order is the exam's.
FAMILY_MODULES = ("ring", "gan", "vae", "vq", "information")
for _module in FAMILY_MODULES:
    importlib.import_module(f"{__name__}.{_module}")
