from __future__ import annotations
import __future__

import importlib
import pkgutil
import types

import pytest

import asyncpipe

# `__main__` is a script: importing it runs the command line.  `_cli` is the command-line
# application behind it (STYLE rule 4), reached as `python -m asyncpipe` or the `asyncpipe`
# script, not library API; `_startup` is that command's first moments.  They still declare
# `__all__` where they can be imported.
NOT_LIBRARY = {"__main__", "_cli", "_startup"}

MODULES = sorted(
    info.name for info in pkgutil.iter_modules(asyncpipe.__path__) if info.name != "__main__"
)


class TestExports:
    """The package re-exports exactly its public API, in a sorted __all__."""

    def test_all_is_sorted_and_unique(self) -> None:
        """asyncpipe.__all__ is sorted and has no duplicates."""
        assert asyncpipe.__all__ == sorted(set(asyncpipe.__all__))

    def test_all_names_exist(self) -> None:
        """Every name in asyncpipe.__all__ is an attribute of the package."""
        missing = [name for name in asyncpipe.__all__ if not hasattr(asyncpipe, name)]
        assert missing == []

    def test_no_public_name_left_out(self) -> None:
        """Every public attribute of the package (not a submodule) is in __all__."""
        public = {
            name
            for name, value in vars(asyncpipe).items()
            if not name.startswith("_")
            and not isinstance(value, types.ModuleType | __future__._Feature)
        }
        assert sorted(public - set(asyncpipe.__all__)) == []

    @pytest.mark.parametrize("module_name", MODULES)
    def test_module_declares_all(self, module_name: str) -> None:
        """Every module declares __all__, and every name in it exists."""
        module = importlib.import_module(f"asyncpipe.{module_name}")
        assert isinstance(getattr(module, "__all__", None), list)
        assert [name for name in module.__all__ if not hasattr(module, name)] == []

    @pytest.mark.parametrize("module_name", [m for m in MODULES if m not in NOT_LIBRARY])
    def test_module_names_are_reexported(self, module_name: str) -> None:
        """Every name an underscore module exports is re-exported by the package, as itself."""
        module = importlib.import_module(f"asyncpipe.{module_name}")
        missing = [name for name in module.__all__ if name not in asyncpipe.__all__]
        assert missing == [], f"asyncpipe does not re-export {missing} from {module_name}"
        for name in module.__all__:
            assert getattr(asyncpipe, name) is getattr(module, name)
