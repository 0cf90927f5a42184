"""gymnax's base modules (``environment``, ``spaces``) without the cost of ``import gymnax``.

jaxgrid envs subclass ``gymnax.environments.environment.Environment`` and use gymnax spaces, but
need nothing else of gymnax. A plain ``from gymnax.environments import environment`` first runs
``gymnax/__init__.py`` and ``gymnax/environments/__init__.py``, which import every gymnax env
(and, through ``gymnax.environments.misc``, seaborn, pandas and scipy.stats): about 2 s, most of
the time to first result of a small run. Here the two modules are loaded from their files under
their own names (``importlib.util.spec_from_file_location``), so they are the very modules gymnax
itself uses: a later ``import gymnax`` finds them in ``sys.modules`` and reuses them (a one-shot
import hook binds them as attributes of ``gymnax.environments`` when that package is imported), and
``isinstance`` checks against gymnax's classes hold either way. If gymnax's package is already
imported, or its files are not plain ``.py`` files (a zipped install), the ordinary import is used.

    from jaxgrid.gymnax_base import environment, spaces
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["environment", "load_gymnax_module", "spaces"]


def load_gymnax_module(name: str) -> ModuleType:
    """The module ``gymnax.environments.<name>``, imported without gymnax's package ``__init__``.

    Args:
        name: a module of ``gymnax/environments/`` that imports no sibling through the package
            (``"environment"`` or ``"spaces"``).

    Raises:
        ImportError: gymnax is not installed.
    """
    full = f"gymnax.environments.{name}"
    if full in sys.modules:
        return sys.modules[full]
    if "gymnax.environments" in sys.modules:  # the package is (being) imported: use it
        return importlib.import_module(full)
    spec = importlib.util.find_spec("gymnax")  # finds the package; does not import it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("jaxgrid needs gymnax (pip install 'gymnax>=1.0.1')")
    path = Path(next(iter(spec.submodule_search_locations))) / "environments" / f"{name}.py"
    if not path.is_file():
        return importlib.import_module(full)
    file_spec = importlib.util.spec_from_file_location(full, path)
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[full] = module
    try:
        file_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[full]
        raise
    if not any(isinstance(f, _BindLoadedSubmodules) for f in sys.meta_path):
        sys.meta_path.insert(0, _BindLoadedSubmodules())
    return module


class _BindLoadedSubmodules(importlib.abc.MetaPathFinder):
    """Import hook for the later import of the package ``gymnax.environments`` (if any): binds the
    submodules loaded above as its attributes, as a normal import would have, then removes itself."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "gymnax.environments":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _BindingLoader(spec.loader)
        return spec


class _BindingLoader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        prefix = module.__name__ + "."
        for full, sub in list(sys.modules.items()):
            if full.startswith(prefix) and "." not in full[len(prefix):]:
                setattr(module, full[len(prefix):], sub)
        self.inner.exec_module(module)


environment = load_gymnax_module("environment")
spaces = load_gymnax_module("spaces")
