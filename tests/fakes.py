"""Fake run directories (``results/<run_id>/``) for testing the report.

These are fakes on purpose: they exercise our own rendering of result files, not a model. The
``result.json`` they write is valid against ``runner/schemas/result.schema.json``
(``validate_result`` checks it); the numbers are self-consistent (metrics are computed from the
predictions written next to them).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULT_SCHEMA = REPO_ROOT / "runner" / "schemas" / "result.schema.json"

GPU_METRICS = ("gpu_utilization (%)", "memory_utilization (%)", "memory_percent (%)", "power_usage (W)",
               "energy (J)", "peak_memory_allocated (MiB)")
NO_GPU_REASON = "no NVIDIA GPU visible (fake CPU host)"
_SHA = "0123456789abcdef" * 4


def validate_result(result: dict) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``result`` matches the result schema."""
    import jsonschema

    schema = json.loads(RESULT_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(result, schema, cls=jsonschema.validators.validator_for(schema))


def _stats(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max()),
            "last": float(values[-1])}


def _block(series: dict[str, np.ndarray], duration: float, energy: float | None) -> dict[str, float | None]:
    out: dict[str, float | None] = {"duration (s)": round(duration, 3)}
    for name, values in series.items():
        for stat, v in _stats(values).items():
            out[f"{name}/{stat}"] = round(v, 4)
    if energy is not None:
        out["gpu:0/energy (J)"] = round(energy, 1)
    return out


def _roc(labels: np.ndarray, scores: np.ndarray) -> dict[str, list[float]]:
    thresholds = np.r_[np.nextafter(scores.max(), np.inf), np.sort(np.unique(scores))[::-1]]
    pos, neg = labels.sum(), (1 - labels).sum()
    fpr = [float(((scores >= t) & (labels == 0)).sum() / neg) for t in thresholds]
    tpr = [float(((scores >= t) & (labels == 1)).sum() / pos) for t in thresholds]
    return {"fpr": fpr, "tpr": tpr, "thresholds": [float(t) for t in thresholds]}


def make_fake_run(run_dir: Path, *, task_type: str = "regression", status: str = "ok",
                  display_name: str = "Fake Model", run_id: str | None = None, gpu: bool = False,
                  seed: int = 0, n_test: int = 150, n_epochs: int = 12, n_samples: int = 700,
                  write_timeseries: bool = True, write_predictions: bool | None = None) -> dict[str, Any]:
    """Write a fake ``results/<run_id>/`` directory and return its ``result.json`` content.

    Args:
        run_dir: directory to create (its name is the default run id).
        task_type: ``"regression"`` or ``"classification"``.
        status: ``"ok"``, ``"failed"``, ``"timeout"`` or ``"oom"``; a non-ok run gets an error
            block, a short history, no metrics and (by default) no predictions.csv.
        display_name: ``model.display_name`` (put markup here to test escaping).
        gpu: record ``gpu:0`` metrics; otherwise every GPU metric is listed as unavailable.
        n_samples: rows of timeseries.csv (more than 500 exercises downsampling).
    """
    if task_type not in ("regression", "classification"):
        raise ValueError(task_type)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = run_id or run_dir.name
    rng = np.random.default_rng(seed)
    ok = status == "ok"
    if write_predictions is None:
        write_predictions = ok

    # --- telemetry ------------------------------------------------------------------------
    interval = 0.5
    n = n_samples if ok else max(20, n_samples // 3)
    elapsed = np.arange(n) * interval
    n_setup = max(2, n // 20)
    n_predict = max(2, n // 8) if ok else 0
    phase = np.array(["setup"] * n_setup + ["train"] * (n - n_setup - n_predict) + ["predict"] * n_predict)
    cols: dict[str, np.ndarray] = {
        "host/cpu_percent (%)": np.clip(60 + 25 * np.sin(elapsed / 7) + rng.normal(0, 5, n), 0, 100),
        "host/memory_percent (%)": np.clip(30 + 10 * (elapsed / elapsed[-1]) + rng.normal(0, 1, n), 0, 100),
    }
    if gpu:
        busy = np.where(phase == "setup", 2.0, np.where(phase == "train", 85.0, 55.0))
        cols["gpu:0/gpu_utilization (%)"] = np.clip(busy + rng.normal(0, 4, n), 0, 100)
        cols["gpu:0/memory_utilization (%)"] = np.clip(busy * 0.5 + rng.normal(0, 3, n), 0, 100)
        cols["gpu:0/memory_percent (%)"] = np.clip(np.where(phase == "setup", 3.0, 41.0) + rng.normal(0, 0.5, n), 0, 100)
        cols["gpu:0/power_usage (W)"] = np.clip(60 + busy * 3.5 + rng.normal(0, 8, n), 0, None)
    if write_timeseries:
        with (run_dir / "timeseries.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "elapsed (s)", "phase", *cols])
            for i in range(n):
                w.writerow([f"{1.7e9 + elapsed[i]:.3f}", f"{elapsed[i]:.3f}", phase[i],
                            *(f"{cols[c][i]:.3f}" for c in cols)])

    def energy_of(mask: np.ndarray) -> float | None:
        return float(cols["gpu:0/power_usage (W)"][mask].sum() * interval) if gpu else None

    overall = _block(cols, float(elapsed[-1] + interval), energy_of(np.ones(n, bool)))
    phases = {}
    for name in ("train", "predict"):
        mask = phase == name
        if mask.any():
            phases[name] = _block({k: v[mask] for k, v in cols.items()}, float(mask.sum() * interval),
                                  energy_of(mask))
    if gpu:
        overall["gpu:0/peak_memory_allocated (MiB)"] = 20480.0
        unavailable: list[dict[str, str]] = []
    else:
        unavailable = [{"metric": f"gpu:*/{m}", "reason": NO_GPU_REASON} for m in GPU_METRICS]

    # --- predictions and metrics ----------------------------------------------------------
    ids = [f"mp-{1000 + i}" for i in range(n_test)]
    metrics: dict[str, float | None] = {}
    details: dict[str, Any] = {}
    if task_type == "regression":
        target = rng.normal(-1.5, 0.8, n_test)
        pred = target + rng.normal(0.02, 0.12, n_test)
        if ok:
            err = pred - target
            mse = float(np.mean(err ** 2))
            metrics = {"MAE": float(np.mean(np.abs(err))), "MSE": mse, "RMSE": math.sqrt(mse),
                       "R2": float(1 - np.sum(err ** 2) / np.sum((target - target.mean()) ** 2)),
                       "MaxError": float(np.max(np.abs(err)))}
        rows = [[i, f"{t:.6f}", f"{p:.6f}"] for i, t, p in zip(ids, target, pred)]
        header = ["id", "target", "prediction"]
    else:
        labels = (rng.random(n_test) < 0.4).astype(int)
        scores = 1 / (1 + np.exp(-(rng.normal(0, 1.2, n_test) + 1.6 * (labels - 0.5) * 2)))
        thr = 0.5
        predicted = (scores >= thr).astype(int)
        if ok:
            tp = int(((predicted == 1) & (labels == 1)).sum())
            fp = int(((predicted == 1) & (labels == 0)).sum())
            fn = int(((predicted == 0) & (labels == 1)).sum())
            tn = int(((predicted == 0) & (labels == 0)).sum())
            roc = _roc(labels, scores)
            order = np.argsort(roc["fpr"], kind="stable")
            f, t = np.asarray(roc["fpr"])[order], np.asarray(roc["tpr"])[order]
            auc = float(np.sum(np.diff(f) * (t[1:] + t[:-1]) / 2))
            precision = tp / (tp + fp) if tp + fp else None
            recall = tp / (tp + fn) if tp + fn else None
            metrics = {"ROC-AUC": auc, "Accuracy": (tp + tn) / n_test, "Precision": precision,
                       "Recall": recall,
                       "F1": (2 * precision * recall / (precision + recall)) if precision and recall else None}
            details = {"threshold": thr, "roc_curve": roc,
                       "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
                       "n_positive": int(labels.sum()), "n_negative": int(n_test - labels.sum())}
        rows = [[i, int(y), int(p), f"{s:.6f}"] for i, y, p, s in zip(ids, labels, predicted, scores)]
        header = ["id", "target", "prediction", "score"]
    if write_predictions:
        with (run_dir / "predictions.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)

    # --- history --------------------------------------------------------------------------
    epochs = n_epochs if ok else max(2, n_epochs // 4)
    history = []
    for e in range(1, epochs + 1):
        history.append({"epoch": e, "train_loss": float(0.9 * math.exp(-e / 3) + 0.05),
                        "val_loss": float(1.0 * math.exp(-e / 3.5) + 0.08), "lr": 1e-3,
                        "loss_name": "L1Loss" if task_type == "regression" else "BCEWithLogitsLoss",
                        "seconds": 1.5})

    # --- log and error --------------------------------------------------------------------
    log_lines = [f"[{run_id}] epoch {h['epoch']} train_loss={h['train_loss']:.4f}" for h in history]
    error = None
    if not ok:
        kind = {"oom": "OutOfMemoryError", "timeout": "TimeoutError"}.get(status, "RuntimeError")
        log_lines.append("Traceback (most recent call last): <frame & 'quotes'>")
        log_lines.append(f"{kind}: boom <b>not bold</b> & more")
        error = {"type": kind, "message": "simulated failure: <img src=x onerror=alert(3)> & \"quoted\"",
                 "traceback": "Traceback (most recent call last):\n  File \"fake.py\", line 1\n"
                              f"{kind}: simulated failure",
                 "log_tail": "\n".join(log_lines[-20:]), "phase": "train"}
    (run_dir / "run.log").write_text("\n".join(log_lines) + "\n", encoding="utf-8")

    files = {"result": "result.json", "log": "run.log"}
    if write_timeseries:
        files["timeseries"] = "timeseries.csv"
    if write_predictions:
        files["predictions"] = "predictions.csv"

    is_reg = task_type == "regression"
    result: dict[str, Any] = {
        "schema_version": "1.0",
        "run_id": run_id,
        "model": {"name": "fake_model", "display_name": display_name, "entry_point": "fake.adapter:FakeAdapter",
                  "paper": {"title": "A fake model for tests", "year": 2024}},
        "task": {"name": "perov5_heat_ref" if is_reg else "perov5_gap_positive",
                 "target": "heat_ref" if is_reg else "ind_gap",
                 "unit": "eV/atom" if is_reg else None,
                 "positive_class": None if is_reg else "ind_gap > 0 eV"},
        "task_type": task_type,
        "dataset": {"name": "perov_5", "variant": "full", "split": "random 80/10/10",
                    "sizes": {"train": 15142, "val": 1893, "test": n_test},
                    "sha256": {"data.csv": _SHA}},
        "status": status,
        "backend": "local",
        "seed": seed,
        "started_at": "2025-01-01T12:00:00Z",
        "finished_at": "2025-01-01T12:30:00Z",
        "hyperparameters": {
            "effective": {"epochs": n_epochs, "batch_size": 64, "lr": 1e-3, "hidden": [128, 128],
                          "comment": "<img src=x onerror=alert(2)>"},
            "overridden": {"epochs": {"paper": 500, "used": n_epochs}},
            "profile": "bench",
        },
        "resources": {"sampling_interval_s": interval, "overall": overall, "phases": phases,
                      "unavailable": unavailable, "timeseries_file": "timeseries.csv"},
        "model_stats": ({"params": 1_234_567, "trainable_params": 1_234_567,
                         "flops": {"forward_per_sample": 4_560_000_000, "forward_per_epoch": 69_047_520_000_000,
                                   "train_per_epoch": 207_142_560_000_000, "probe_batch_size": 32,
                                   "method": "FlopCounterMode on a probe batch (fake)",
                                   "not_counted": "gather/scatter message aggregation (index_select, scatter_add)"},
                         "thop": {"macs_per_sample": 1_100_000_000, "note": "thop misses functional matmuls"},
                         "error": None}
                        if ok else
                        {"params": None, "trainable_params": None, "flops": None, "thop": None, "error": None}),
        "metrics": metrics,
        "metric_details": details,
        "history": history,
        "environment": {"mateval_git_sha": "abc1234", "python": "3.11.7",
                        "packages": {"torch": "2.3.1", "torch_geometric": "2.5.3", "nvitop": "1.3.2"},
                        "platform": "Linux-6.1-x86_64", "cpu": "Fake CPU @ 3 GHz", "cpu_count": 16,
                        "torch_device": "cuda:0" if gpu else "cpu",
                        "gpus": ["NVIDIA H200"] if gpu else [], "gpu_driver": "550.54" if gpu else None,
                        "hostname": "fakehost"},
        "error": error,
        "files": files,
        "notes": ["fake run for tests"],
    }
    (run_dir / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result
