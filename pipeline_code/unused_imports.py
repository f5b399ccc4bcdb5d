"""Keep the definition builder from importing packages it never uses.

Importing the SageMaker SDK (v3) imports, at module level, packages that
building a pipeline definition never calls: pandas, numpy and scipy (the data
serializers of ``sagemaker.core.serializers``), docker and paramiko (local
container mode), omegaconf (training recipes). In the builder process
(``python -m pipeline_code.build``) they are a third of the CPU the SDK's
import costs (measured, docs/aws.md "Cold synth").

:func:`skip_unused_imports` makes those packages importable as placeholders
in the calling process only: ``import pandas`` and ``from pandas import
DataFrame`` succeed, and anything that *uses* a placeholder (calls it,
instantiates it) raises :class:`UnusedImportUsed` naming it. So a definition
either comes out exactly as with the real packages or the build fails with a
clear message - never a silent difference.
``tests/pipeline_code/test_definition_build.py`` checks that the builder
process (with placeholders) writes the same bytes as a build with the real
packages. Only ``pipeline_code.build.main`` calls it; never the CDK app's
process nor the tests' (they keep the real packages).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any

#: Top-level packages the SDK imports that no definition build uses.
UNUSED = ("pandas", "numpy", "scipy", "docker", "paramiko", "omegaconf")


class UnusedImportUsed(RuntimeError):
    """A placeholder package was used while a pipeline definition was built."""


def _message(name: str) -> str:
    top = name.split(".")[0]
    return (f"{name} was used while building a pipeline definition, but pipeline_code.unused_imports "
            f"replaced {top} by a placeholder: remove {top!r} from UNUSED in pipeline_code/unused_imports.py")


class _PlaceholderType(type):
    """Attributes of a placeholder are placeholders too (``omegaconf.dictconfig.DictConfig``)."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        child = _PlaceholderType(name, (_Placeholder,), {"__module__": cls.__module__,
                                                           "__qualname__": f"{cls.__qualname__}.{name}"})
        setattr(cls, name, child)
        return child

    def __getitem__(cls, item: Any) -> Any:  # annotations such as DataFrame[...]
        return cls

    def __or__(cls, other: Any) -> Any:  # annotations such as DataFrame | None
        return cls

    __ror__ = __or__

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise UnusedImportUsed(_message(f"{cls.__module__}.{cls.__qualname__}"))


class _Placeholder(metaclass=_PlaceholderType):
    """What every attribute of a placeholder module is: a class that cannot be used."""


class _PlaceholderModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = _PlaceholderType(name, (_Placeholder,), {"__module__": self.__name__, "__qualname__": name})
        setattr(self, name, value)
        return value


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] in self.names:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _PlaceholderModule(spec.name)
        module.__path__ = []  # a package: its submodules are placeholders as well
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def skip_unused_imports(names: tuple[str, ...] = UNUSED) -> None:
    """From now on, in this process, ``names`` (and their submodules) import as placeholders.

    Call it before anything imports them; a package already imported is left as it is.
    """
    if any(isinstance(finder, _Finder) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder(tuple(n for n in names if n not in sys.modules)))


def is_placeholder(module: types.ModuleType) -> bool:
    return isinstance(module, _PlaceholderModule)
