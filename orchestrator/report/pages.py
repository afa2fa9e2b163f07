"""One page per model: its runs grouped by ``model.name`` (as the summary groups them), ordered by
task (order of first appearance) and seed, with the model's paper and status counts."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .formatting import as_dict, dig, is_num, short_json
from .views import RunView

__all__ = ["ModelPage", "model_slug", "model_key", "model_pages"]


@dataclass
class ModelPage:
    """One model's page of the report.

    Attributes:
        anchor: element id of the page (``model-<slug>``), unique in the report.
        name: ``model.name`` (the grouping key, as in the per-model summary).
        display_name: heading (the summary's column label when there is one, else the display name).
        paper: the model's paper (``model.paper``) as one line of text, ``None`` when not recorded.
        runs: the model's runs, ordered by task (order of first appearance in the report) then seed.
        tasks: its tasks in that order.
        status_counts: ``[(status, count)]`` over its runs, ``ok`` first.
    """

    anchor: str
    name: str
    display_name: str
    paper: str | None
    runs: list[RunView]
    tasks: list[str]
    status_counts: list[tuple[str, int]]


def model_slug(name: str) -> str:
    """``"CGCNN (v2)"`` -> ``"cgcnn-v2"``: lower-case ASCII letters, digits and dashes (``"model"`` if empty)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


def model_key(result: Mapping) -> str:
    """The model a result belongs to, as :func:`orchestrator.report.summary.aggregate` groups them."""
    model = as_dict(result.get("model"))
    for v in (model.get("name"), model.get("display_name")):
        if isinstance(v, str) and v:
            return v
    return "?"


def _paper_text(paper: Any) -> str | None:
    if isinstance(paper, str):
        return paper.strip() or None
    if not isinstance(paper, Mapping) or not paper:
        return None
    parts = []
    title = paper.get("title")
    if title not in (None, ""):
        parts.append(short_json(title))
    for k, v in paper.items():
        if k == "title" or v in (None, "", [], {}):
            continue
        text = ", ".join(map(str, v)) if isinstance(v, list) else short_json(v)
        parts.append(f"{k}: {text}")
    return " · ".join(parts) or None


def _seed_key(run: RunView) -> tuple[int, float, str]:
    seed = run.result.get("seed")
    if is_num(seed):
        return 0, float(seed), ""
    return (1, 0.0, "") if seed is None else (0, math.inf, str(seed))


def model_pages(runs: Sequence[RunView], suite: Any = None) -> list[ModelPage]:
    """One :class:`ModelPage` per model (order of first appearance), runs ordered by task then seed."""
    task_order: dict[str, int] = {}
    for r in runs:
        task_order.setdefault(r.task_name, len(task_order))
    by_model: dict[str, list[RunView]] = {}
    for r in runs:
        by_model.setdefault(model_key(r.result), []).append(r)
    columns = getattr(suite, "columns", None) or []
    labels: dict[str, str] = {}  # a model with several settings has several columns: its name, not theirs
    for c in columns:
        label = getattr(c, "model_label", None) or getattr(c, "label", None)
        if isinstance(label, str) and label:
            labels.setdefault(c.name, label)
    pages: list[ModelPage] = []
    used: set[str] = set()
    for name, members in by_model.items():
        slug = base = model_slug(name)
        n = 2
        while slug in used:
            slug, n = f"{base}-{n}", n + 1
        used.add(slug)
        ordered = sorted(members, key=lambda r: (task_order[r.task_name], _seed_key(r), r.index))
        display = labels.get(name) or next(
            (d for r in members if isinstance(d := dig(r.result, "model", "display_name"), str) and d), name)
        paper = next((p for r in members if (p := _paper_text(dig(r.result, "model", "paper")))), None)
        counts: dict[str, int] = {}
        for r in members:
            counts[r.status] = counts.get(r.status, 0) + 1
        pages.append(ModelPage(
            anchor=f"model-{slug}", name=name, display_name=display, paper=paper, runs=ordered,
            tasks=list(dict.fromkeys(r.task_name for r in ordered)),
            status_counts=sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0]))))
    return pages
