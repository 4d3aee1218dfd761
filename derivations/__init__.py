"""Problem families: each module registers its families and seed aliases; exams are data (exams/)."""
import importlib
import pkgutil

from .core import ALIASES, FAMILIES, Derivation, resolve, solve  # noqa: F401
from .values import ParameterError  # noqa: F401

# Importing a family module registers it. The seed exam's modules come first, in its order,
# then every other module of this package (a new family is one new file), by name.
FAMILY_MODULES = ("ring", "gan", "vae", "vq")
KIT_MODULES = {"core", "values", "catalogue", "verify", "exam", "discrete"}
_found = sorted(info.name for info in pkgutil.iter_modules(__path__)
                if info.name not in KIT_MODULES and info.name not in FAMILY_MODULES)
for _module in FAMILY_MODULES + tuple(_found):
    importlib.import_module(f"{__name__}.{_module}")
