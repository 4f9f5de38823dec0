"""The layering of STYLE.md is checked, not hoped for: import-linter contracts in pyproject.toml, and the
services' typed answers."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

from dutyline import services

REPO = Path(__file__).resolve().parents[1]


def test_layers_import_downward_only_and_engines_do_no_io() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(linter)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


def _public_callables(module: ModuleType) -> Iterator[tuple[str, Callable[..., object]]]:
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(value):
            yield name, value
        elif inspect.isclass(value):
            for attribute, member in vars(value).items():
                if inspect.isfunction(member) and not attribute.startswith("_"):
                    yield f"{name}.{attribute}", member


def test_no_service_answers_with_an_untyped_dict() -> None:
    """Services answer with structs (services/shapes.py), which the HTTP layer sends and documents as they are: a
    `dict[str, Any]` is a shape nobody declared."""
    untyped = []
    for info in pkgutil.walk_packages(services.__path__, f"{services.__name__}."):
        module = importlib.import_module(info.name)
        for name, function in _public_callables(module):
            returned = str(function.__annotations__.get("return", ""))
            if "dict[str, Any]" in returned:
                untyped.append(f"{module.__name__}.{name} -> {returned}")
    assert not untyped, "\n".join(untyped)
