"""Like with like: which runs may share one mean ± std, and what to say about their settings.

A mean ± std over seeds means something only over runs that differ in nothing but the seed. The
per-model summary (:mod:`orchestrator.report.summary`) therefore splits a model's runs into
*setting columns* before it aggregates:

- :func:`setting_of` reads what a run was run with apart from task and seed, from ``result.json``:
  the hyperparameter profile (``hyperparameters.profile``: ``bench`` or ``paper``), the effective
  hyperparameters (``hyperparameters.effective``), the data variant (``dataset.variant``) and the
  sample limits (``dataset.max_samples``) and the evaluation protocol (``dataset.protocol.name``:
  the 5 folds of a ``--protocol matbench`` run share one column, apart from runs on the task's own
  split). These do not depend on the task, so runs of one setting on several tasks share a column.
- Within one model, task and setting, runs that still differ in ``config_sha256`` (model files,
  number of generated samples) or in the dataset files' sha256 are split too
  (:func:`setting_columns`), labelled by the short hash.
- A run that failed before its settings were recorded (an empty ``hyperparameters.effective``, no
  ``config_sha256`` or no dataset sha256) joins the one group of its model and task that agrees with
  what it did record (first among the runs with its ``config_sha256``); with none or several such
  groups it stays on its own.

A model with one setting keeps one column labelled with its display name; a model with several
gets one column per setting, labelled by what differs between them (``epochs=3``,
``profile=paper``, ``data=full``, ``max-samples train=96``). :func:`paper_differences` says how a
setting differs from the paper's (``bench settings (epochs 10 vs paper 500)``, ``data: subset``,
``max-samples train=96``) and :func:`task_mismatch_note` says when the models on one task were not
run alike (different profile, data variant or sample limits).

Also here: :func:`run_identity` and :func:`deduplicate` (one computation counted once).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .formatting import as_dict, dig
from .pages import model_key

__all__ = ["Setting", "SettingColumn", "setting_of", "setting_columns", "paper_differences",
           "task_mismatch_note", "settings_text", "run_identity", "deduplicate", "protocol_of", "fold_of"]


def _canon(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def _show(v: Any) -> str:
    """A hyperparameter value as one short token: strings as they are, the rest as JSON."""
    return v if isinstance(v, str) else _canon(v)


def _limits_text(limits: Mapping[str, Any]) -> str:
    return "max-samples " + ",".join(f"{k}={v}" for k, v in limits.items())


def _task(result: Mapping) -> str:
    name = dig(result, "task", "name")
    return name if isinstance(name, str) and name else "?"


@dataclass(frozen=True)
class Setting:
    """What a run was run with, apart from its task and seed (as ``result.json`` records it).

    Attributes:
        profile: ``"bench"`` or ``"paper"``; ``None`` when not recorded.
        hyperparameters: the effective hyperparameters; ``None`` when not recorded (a run that
            failed before the model stage read ``model.yaml``).
        overridden: ``{name: {"paper": default, "used": value}}`` for each value that differs from
            the paper default (``hyperparameters.overridden``).
        variant: the data variant (``"subset"``, ``"full"``), ``None`` when not recorded.
        max_samples: the ``--max-samples`` limits (``{split: n}``), ``None`` without.
        protocol: ``"task"`` (the task's own split) or ``"matbench"`` (Matbench's folds).
    """

    profile: str | None
    hyperparameters: Mapping[str, Any] | None
    overridden: Mapping[str, Any]
    variant: str | None
    max_samples: Mapping[str, int] | None
    protocol: str = "task"

    @property
    def key(self) -> tuple:
        """What two runs must share to be averaged together (besides model, task and hashes)."""
        hp = None if self.hyperparameters is None else _canon(self.hyperparameters)
        return (self.profile, hp, self.variant, _canon(self.max_samples or {}), self.protocol)


def setting_of(result: Mapping) -> Setting:
    """The :class:`Setting` of one result (never raises on odd content)."""
    hp = as_dict(result.get("hyperparameters"))
    effective = hp.get("effective")
    profile = hp.get("profile")
    variant = dig(result, "dataset", "variant")
    limits = dig(result, "dataset", "max_samples")
    return Setting(profile if isinstance(profile, str) else None,
                   dict(effective) if isinstance(effective, Mapping) and effective else None,
                   as_dict(hp.get("overridden")), variant if isinstance(variant, str) else None,
                   dict(limits) if isinstance(limits, Mapping) and limits else None, protocol_of(result))


def protocol_of(result: Mapping) -> str:
    """``dataset.protocol.name`` of a result (``"matbench"``), ``"task"`` when absent."""
    name = dig(result, "dataset", "protocol", "name")
    return name if isinstance(name, str) and name else "task"


def fold_of(result: Mapping) -> int | None:
    """``dataset.protocol.fold`` of a result, ``None`` without a protocol."""
    fold = dig(result, "dataset", "protocol", "fold")
    return fold if isinstance(fold, int) and not isinstance(fold, bool) else None


def paper_differences(setting: Setting) -> list[str]:
    """How ``setting`` differs from the paper's: ``["bench settings (epochs 10 vs paper 500)",
    "data: subset", "max-samples train=96"]``; empty when it does not (or nothing is recorded)."""
    notes = []
    changed = [f"{k} {_show(v.get('used'))} vs paper {_show(v.get('paper'))}"
               for k, v in setting.overridden.items() if isinstance(v, Mapping)]
    if changed:
        what = "bench settings" if setting.profile == "bench" else "changed settings"
        notes.append(f"{what} ({', '.join(changed)})")
    if setting.variant and setting.variant != "full":
        notes.append(f"data: {setting.variant}")
    if setting.max_samples:
        notes.append(_limits_text(setting.max_samples))
    if setting.protocol != "task":
        notes.append(f"protocol: {setting.protocol} (values over its folds)")
    return notes


def settings_text(result: Mapping) -> str:
    """One line for a run's settings (the ``settings`` column of ``summary.csv``): profile, data
    variant, sample limits and the hyperparameters that differ from the paper's, e.g.
    ``"profile=bench; data=subset; max-samples train=96; epochs=10 (paper 500)"``."""
    s = setting_of(result)
    parts = [f"profile={s.profile}" if s.profile else "", f"data={s.variant}" if s.variant else "",
             _limits_text(s.max_samples) if s.max_samples else "",
             f"protocol={s.protocol}" if s.protocol != "task" else ""]
    parts += [f"{k}={_show(v.get('used'))} (paper {_show(v.get('paper'))})"
              for k, v in s.overridden.items() if isinstance(v, Mapping)]
    return "; ".join(p for p in parts if p)


@dataclass
class SettingColumn:
    """The runs of one model with one setting: one column of the summary.

    Attributes:
        model: ``model.name``.
        key: unique id of the column in the table (``model`` when the model has one setting).
        label: what tells this column from the model's other ones (``"epochs=3"``); ``""`` when the
            model has only one.
        setting: the setting of its runs (from the first run that recorded its hyperparameters).
        runs: its runs in input order.
    """

    model: str
    key: str
    label: str
    setting: Setting
    runs: list[Mapping] = field(default_factory=list)

    @property
    def tasks(self) -> list[str]:
        """Its tasks in order of first appearance."""
        return list(dict.fromkeys(_task(r) for r in self.runs))


def _fine(result: Mapping) -> tuple[str | None, str | None]:
    """The task-dependent part of a run's identity: ``config_sha256`` and the dataset files' sha256."""
    sha = dig(result, "dataset", "sha256")
    config = result.get("config_sha256")
    return (config if isinstance(config, str) and config else None,
            _canon(sha) if isinstance(sha, Mapping) and sha else None)


def _adopt(own: tuple, candidates: Sequence[tuple]) -> tuple:
    """``own`` with its unknown (``None``) parts taken from the one candidate that agrees with its
    known parts; ``own`` unchanged without such a candidate or with several."""
    if None not in own:
        return own
    fits = [c for c in dict.fromkeys(candidates)
            if None not in c and all(a is None or a == b for a, b in zip(own, c))]
    return fits[0] if len(fits) == 1 else own


def _split_label(settings: Sequence[Setting], setting: Setting) -> str:
    """What tells ``setting`` from the others of ``settings`` (all of one model)."""
    parts = []
    known = [s for s in settings if s.hyperparameters is not None]
    names = list(dict.fromkeys(k for s in known for k in s.hyperparameters))
    if setting.hyperparameters is None:
        parts.append("settings not recorded")
    else:
        for name in names:
            values = {_canon(s.hyperparameters.get(name)) for s in known}
            if len(values) > 1:
                parts.append(f"{name}={_show(setting.hyperparameters.get(name))}")
    if len({s.profile for s in settings}) > 1:
        parts.append(f"profile={setting.profile}")
    if len({s.variant for s in settings}) > 1:
        parts.append(f"data={setting.variant}")
    if len({_canon(s.max_samples or {}) for s in settings}) > 1:
        parts.append(_limits_text(setting.max_samples) if setting.max_samples else "no max-samples")
    if len({s.protocol for s in settings}) > 1:
        parts.append(f"protocol={setting.protocol}")
    return ", ".join(parts)


def setting_columns(results: Sequence[Mapping]) -> list[SettingColumn]:
    """Split ``results`` into :class:`SettingColumn` objects: per model (order of first appearance),
    one column per setting (order of first appearance). See the module docstring."""
    by_model: dict[str, list[Mapping]] = {}
    for r in results:
        by_model.setdefault(model_key(r), []).append(r)
    columns: list[SettingColumn] = []
    for model, runs in by_model.items():
        settings = [setting_of(r) for r in runs]
        # a run without recorded hyperparameters joins the one known setting of its task that fits
        keys = [s.key for s in settings]
        fines = [_fine(r) for r in runs]
        for i, r in enumerate(runs):
            if keys[i][1] is None:  # prefer the runs of its own configuration (same config_sha256)
                same_task = [j for j, x in enumerate(runs) if _task(x) == _task(r) and j != i]
                same_config = [j for j in same_task if fines[i][0] and fines[j][0] == fines[i][0]]
                keys[i] = _adopt(keys[i], [keys[j] for j in (same_config or same_task)])
        by_key = {k: s for k, s in zip(keys, settings) if s.hyperparameters is not None}
        setting_for = {k: by_key.get(k, s) for k, s in zip(keys, settings)}
        for i, r in enumerate(runs):
            peers = [fines[j] for j, x in enumerate(runs) if _task(x) == _task(r) and keys[j] == keys[i] and j != i]
            fines[i] = _adopt(fines[i], peers)
        distinct_settings = list(dict.fromkeys(keys))
        groups: dict[tuple, SettingColumn] = {}
        for i, r in enumerate(runs):
            same = {fines[j] for j, x in enumerate(runs) if _task(x) == _task(r) and keys[j] == keys[i]}
            fine_label = ""
            if len(same) > 1:  # same settings, other model files or data files on this task
                config, data = fines[i]
                if len({f[0] for f in same}) > 1:
                    fine_label = f"config {config[:8]}" if config else "config not recorded"
                else:
                    fine_label = (f"data {hashlib.sha256(data.encode()).hexdigest()[:8]}" if data
                                  else "data files not recorded")
            column_key = (keys[i], fine_label)
            if column_key not in groups:
                setting = setting_for[keys[i]]
                label = _split_label([setting_for[k] for k in distinct_settings], setting) \
                    if len(distinct_settings) > 1 else ""
                label = ", ".join(x for x in (label, fine_label) if x)
                groups[column_key] = SettingColumn(model, model, label, setting)
            groups[column_key].runs.append(r)
        if len(groups) > 1:
            for n, column in enumerate(groups.values(), 1):
                column.key = f"{model}#{n}"
        columns += groups.values()
    return columns


def task_mismatch_note(task: str, columns: Sequence[tuple[str, Setting]]) -> str | None:
    """A note when the models on ``task`` were not run alike: ``columns`` are ``(column label,
    setting)`` of the columns with runs on it; the note names, per column, the profile, data
    variant and sample limits where these differ between them. ``None`` when they agree."""
    aspects = (("profile", lambda s: s.profile or "not recorded"),
               ("data", lambda s: s.variant or "not recorded"),
               ("max-samples", lambda s: ",".join(f"{k}={v}" for k, v in (s.max_samples or {}).items()) or "none"))
    differing = [(name, get) for name, get in aspects if len({get(s) for _, s in columns}) > 1]
    if not differing:
        return None
    what = ", ".join(name for name, _ in differing)
    per_column = "; ".join(f"{label}: " + ", ".join(f"{name} {get(s)}" for name, get in differing)
                           for label, s in columns)
    return f"{task}: the models were not run alike ({what} differ): {per_column}."


def run_identity(result: Mapping) -> tuple:
    """What makes two runs the same computation: model, task, seed, ``config_sha256`` (model files
    and settings), the dataset's variant and file sha256, and the Matbench fold (``None`` without)."""
    dataset = as_dict(result.get("dataset"))
    sha = as_dict(dataset.get("sha256"))
    return (model_key(result), _task(result), result.get("seed"), result.get("config_sha256"),
            dataset.get("variant"), tuple(sorted(sha.items())), fold_of(result))


def deduplicate(results: Sequence[Mapping]) -> tuple[list[Mapping], list[tuple[str, list[str]]]]:
    """Count each computation once: of the runs with one :func:`run_identity`, keep the last
    ``ok`` one (by run id, which starts with the start time), else the last one. Runs without a
    ``config_sha256`` (made outside ``mateval bench``) are all kept.

    Returns ``(kept, [(kept run id, [left-out run ids]), ...])``.
    """
    groups: dict[tuple, list[Mapping]] = {}
    for r in results:
        key = run_identity(r) if r.get("config_sha256") else ("unique", id(r))
        groups.setdefault(key, []).append(r)
    kept, duplicates = [], []
    for runs in groups.values():
        ordered = sorted(runs, key=lambda r: str(r.get("run_id")))
        ok = [r for r in ordered if r.get("status") == "ok"]
        chosen = (ok or ordered)[-1]
        kept.append(chosen)
        if len(runs) > 1:
            duplicates.append((str(chosen.get("run_id")), [str(r.get("run_id")) for r in ordered if r is not chosen]))
    order = {id(r): i for i, r in enumerate(results)}
    return sorted(kept, key=lambda r: order[id(r)]), duplicates
