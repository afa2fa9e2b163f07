"""The trivial baseline and the degenerate-result flags of a run, as the summary
(:mod:`orchestrator.report.summary`), the HTML report and the terminal table of ``mateval bench``
show them.

The scoring stage (:mod:`runner.score`) records both in ``result.json``: ``baseline`` (``predictor``,
``metrics`` with the model's metric names, ``details``; ``null`` for a task type without one) and
``flags`` (``[{"code", "message"}]``). Results written before they existed have neither; every
function here then returns the empty value.

The ratio to the baseline is the model's value divided by the baseline's, for every metric; it is
shown only when both are finite and the baseline is above 0 (a ratio to 0 or to a negative value,
e.g. the baseline's R² of about 0, says nothing). Whether a ratio below or above 1 is better is the
metric's catalogue direction (:func:`better_text`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from .formatting import is_num, metric_entry

__all__ = ["baseline_block", "baseline_metric", "flags", "flag_codes", "ratio", "ratio_reason", "better_text",
           "FlaggedRun", "BASELINE_NOTE", "FLAGS_NOTE"]

#: The summary's note under a table with baseline rows.
BASELINE_NOTE = ("Baseline rows: the trivial predictor's score on the same test split, from the same scoring code "
                 "(regression: the training mean, or the per-element linear fit for a total energy such as QM9's "
                 "U0; classification: the training majority class, the training prior as score; spectra: the mean training spectrum; generation: random training crystals "
                 "scored as if generated), mean over the same ok runs. ratio = the model's mean ÷ the baseline's "
                 "mean; the row label says whether below or above 1 is better; no ratio when the baseline is not "
                 "above 0 (e.g. R² ≈ 0).")
#: The summary's note under a table with a flags row.
FLAGS_NOTE = ("Flags: degenerate results found by the scoring stage (e.g. no_positive_predicted, constant_score, "
              "constant_prediction, r2_negative, all_invalid, loss_not_finite), with the number of ok runs that "
              "raised each; the runs are listed under the table.")


@dataclass
class FlaggedRun:
    """A run whose result carries flags: ``model`` (display label), ``task``, ``seed``, ``run_id``
    and ``flags`` (``[{"code", "message"}]``)."""

    model: str
    task: str
    seed: str
    run_id: str
    flags: list[dict[str, str]]


def baseline_block(result: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``result["baseline"]`` when it is a block with metrics, else ``None``."""
    block = result.get("baseline") if isinstance(result, Mapping) else None
    return block if isinstance(block, Mapping) and isinstance(block.get("metrics"), Mapping) else None


def baseline_metric(result: Mapping[str, Any], name: str) -> float | None:
    """The baseline's value of metric ``name`` (``None``: no baseline, or undefined for it)."""
    block = baseline_block(result)
    value = block["metrics"].get(name) if block else None
    return float(value) if is_num(value) else None


def flags(result: Mapping[str, Any]) -> list[dict[str, str]]:
    """``result["flags"]`` as ``[{"code": str, "message": str}]`` (``[]`` without any)."""
    found = result.get("flags") if isinstance(result, Mapping) else None
    if not isinstance(found, list):
        return []
    return [{"code": str(f.get("code") or "?"), "message": str(f.get("message") or "")}
            for f in found if isinstance(f, Mapping)]


def flag_codes(result: Mapping[str, Any]) -> list[str]:
    """The codes of :func:`flags`, each once, in order."""
    return list(dict.fromkeys(f["code"] for f in flags(result)))


def ratio(model: Any, baseline: Any) -> float | None:
    """``model / baseline`` when both are finite numbers and ``baseline > 0``, else ``None``."""
    if not (is_num(model) and is_num(baseline)):
        return None
    model, baseline = float(model), float(baseline)
    if not (math.isfinite(model) and math.isfinite(baseline)) or baseline <= 0:
        return None
    return model / baseline


def ratio_reason(model: Any, baseline: Any) -> str:
    """Why :func:`ratio` is ``None`` for these values (``""`` when it is not)."""
    if not is_num(baseline):
        return "no baseline value"
    if not is_num(model):
        return "no model value"
    if float(baseline) <= 0:
        return "the baseline is not above 0"
    return ""


def better_text(task_type: str | None, name: str) -> str:
    """``"below 1 is better"`` (a lower-is-better metric), ``"above 1 is better"`` (higher is better), or
    ``""`` for a metric without a catalogue entry."""
    entry = metric_entry(task_type, name)
    if entry is None:
        return ""
    return "above 1 is better" if entry.higher_is_better else "below 1 is better"
