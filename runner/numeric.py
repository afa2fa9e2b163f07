"""The ranges of the numbers mateval takes in, checked in one place wherever they enter.

A number enters as a command-line flag (``mateval bench --interval 0.5``, ``python -m runner
--seed 3``), a grid field (``timeout_s: 1800``) or a ``model.yaml`` field (``timeout_s``). Each
kind has one :class:`Rule`; the command lines use :func:`argument` as the ``type=`` of the flag (argparse
then stops with exit status 2 and ``argument --FLAG: expected ..., got ...``), the file readers call
:meth:`Rule.check` with the file and field as the name. NaN and the infinities are never in range.
JSON Schema cannot reject NaN (every comparison with NaN is false), hence these checks in code.

The module imports nothing beyond the standard library: the host and the model stage both use it.
"""

from __future__ import annotations

import argparse
import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, Callable


class NumberError(ValueError):
    """A number is not of the expected kind or out of range; the message names where it came from."""


@dataclass(frozen=True)
class Rule:
    """What one kind of number must be.

    Attributes:
        what: the kind in words (``"a number of seconds"``, ``"an integer"``).
        integer: only integers (not bools, not ``2.0``); otherwise any finite real number.
        minimum / exclusive_minimum / maximum: the bounds (``None``: none).
    """

    what: str
    integer: bool = False
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None

    def describe(self) -> str:
        """The rule in words: ``"a finite number of seconds > 0 and <= 2592000"``."""
        bounds = [f"{word} {_number(bound)}" for word, bound in ((">=", self.minimum), (">", self.exclusive_minimum),
                                                          ("<=", self.maximum)) if bound is not None]
        return " and ".join([self.what + (" " + bounds[0] if bounds else ""), *bounds[1:]])

    def fits(self, value: Any) -> bool:
        """``value`` is of the rule's kind and within its bounds."""
        if isinstance(value, bool) or not isinstance(value, numbers.Integral if self.integer else numbers.Real):
            return False
        if not math.isfinite(value):
            return False
        return ((self.minimum is None or value >= self.minimum)
                and (self.exclusive_minimum is None or value > self.exclusive_minimum)
                and (self.maximum is None or value <= self.maximum))

    def check(self, value: Any, name: str) -> int | float:
        """``value`` itself (an ``int`` for an integer rule, else a ``float``) when it fits.

        Raises:
            NumberError: ``<name>: expected <rule in words>, got <value>``.
        """
        if not self.fits(value):
            raise NumberError(f"{name}: expected {self.describe()}, got {value!r}")
        return int(value) if self.integer else float(value)

    def parse(self, text: str, name: str) -> int | float:
        """The number written in ``text`` (``"1.5"``, ``"12"``), checked; messages quote ``text``.

        Raises:
            NumberError: not a number of the rule's kind, or out of range (``name`` named).
        """
        try:
            value = int(text.strip()) if self.integer else float(text.strip())
        except ValueError:
            value = None
        if not self.fits(value):
            raise NumberError(f"{name}: expected {self.describe()}, got {text!r}")
        return self.check(value, name)


def _number(value: float) -> str:
    """A bound as written in messages: ``3600``, ``0.05``, ``4294967295``."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


#: the telemetry sampling period (seconds): faster floods the time series, slower measures nothing
INTERVAL = Rule("a finite number of seconds", minimum=0.05, maximum=3600.0)
#: a run's wall-clock limit (seconds; at most 30 days)
TIMEOUT = Rule("a finite number of seconds", exclusive_minimum=0.0, maximum=30 * 86400.0)
#: a seed: numpy's ``random.seed`` takes 0 .. 2**32 - 1
SEED = Rule("an integer", integer=True, minimum=0, maximum=2**32 - 1)
#: a count of samples, crystals or processes
COUNT = Rule("an integer", integer=True, minimum=1)
#: a CPU limit (Docker ``--cpus``)
CPUS = Rule("a finite number of CPUs", exclusive_minimum=0.0, maximum=65536.0)

#: Docker's memory syntax: a positive number of bytes with an optional unit b, k, m or g (``16g``, ``512m``)
MEMORY_PATTERN = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([kmg]b?|b)?\s*$")
MEMORY_WHAT = "a memory size such as 16g, 512m or 1048576 (bytes; units b, k, m, g)"


def check_memory(text: str, name: str) -> str:
    """``text`` (stripped) when it is a positive memory size in Docker's syntax.

    Raises:
        NumberError: another syntax, or zero (``name`` named).
    """
    match = MEMORY_PATTERN.match(text)
    if not match or float(match.group(1)) <= 0:
        raise NumberError(f"{name}: expected {MEMORY_WHAT}, got {text!r}")
    return text.strip()


def argument(rule: Rule) -> Callable[[str], int | float]:
    """An argparse ``type=`` for a flag of kind ``rule``: a bad value stops the command with
    ``argument --FLAG: expected <rule in words>, got '<text>'`` and exit status 2."""

    def parse(text: str) -> int | float:
        try:
            return rule.parse(text, "")
        except NumberError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(": ")) from None

    parse.__name__ = rule.what  # argparse names the type by it in some messages
    return parse


def memory_argument(text: str) -> str:
    """The argparse ``type=`` of a memory flag (see :func:`check_memory`)."""
    try:
        return check_memory(text, "")
    except NumberError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(": ")) from None


__all__ = ["COUNT", "CPUS", "INTERVAL", "MEMORY_WHAT", "NumberError", "Rule", "SEED", "TIMEOUT", "argument",
           "check_memory", "memory_argument"]
