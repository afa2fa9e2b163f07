"""Importing plugin modules named in an environment variable (``MATEVAL_PLUGINS`` for the runner's
task types, tasks and catalogue entries; ``MATEVAL_REPORT_PLUGINS`` for report sections)."""

from __future__ import annotations

import importlib
import os

_loaded: set[str] = set()


def import_plugins(variable: str, names: str | None = None) -> list[str]:
    """Import each module named in ``names`` (default: the variable's value; comma-separated,
    importable names), once per process; returns the ones imported now. A plugin registers what it
    adds at import time.

    Raises:
        ImportError: a module cannot be imported (the variable and the module named).
    """
    text = os.environ.get(variable, "") if names is None else names
    loaded = []
    for name in (n.strip() for n in text.split(",")):
        if not name or name in _loaded:
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ImportError(f"{variable}: cannot import plugin {name!r}: {exc}") from exc
        _loaded.add(name)
        loaded.append(name)
    return loaded
