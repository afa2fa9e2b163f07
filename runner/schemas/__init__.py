"""The JSON Schemas of mateval's files (``model.schema.json``, ``result.schema.json``) and the
helpers that read them and name the field an error is about.

Imports nothing of mateval's, so that any module may use it without an import loop.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import jsonschema

SCHEMA_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """A JSON Schema shipped in ``runner/schemas`` (``"model"`` or ``"result"``)."""
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


def field_path(error: jsonschema.ValidationError) -> str:
    """Dotted path of the field a schema error is about, e.g. ``paper.year`` (``<top level>`` if none)."""
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        # the offending names are only in the message; report the first one as the field
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})), key=str)  # keys may be ints
        parts += [str(name) for name in extra[:1]]
    elif error.validator == "required":
        # one error per missing name, each listing every required name: take this error's own
        named = re.match(r"^'(.+)' is a required property", error.message)
        missing = [name for name in error.validator_value if name not in error.instance]
        parts += [named.group(1)] if named else missing[:1]
    return ".".join(parts) or "<top level>"


__all__ = ["SCHEMA_DIR", "field_path", "load_schema"]
