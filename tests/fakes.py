"""Fake run directories (``results/<run_id>/``) for testing the report.

These are fakes on purpose: they exercise our own rendering of result files, not a model. The
``result.json`` they write is valid against ``runner/schemas/result.schema.json``
(``validate_result`` checks it); the numbers are self-consistent (metrics are computed from the
predictions written next to them). A generation fake writes ``generated.cif`` (real, small
crystals built with pymatgen, one ``data_generated_<index>`` block each) and ``generated.csv``
with properties computed from those structures; its validity, success rate and EMD metrics are
computed from them too (COV-R/COV-P are fixed numbers: no fingerprints are computed here). A
spectra fake (phonon DOS) writes a long-format ``predictions.csv`` (``id, frequency, target,
prediction``) for Gaussian-peak spectra on a 51-point grid and computes every metric and per-crystal
list from exactly those numbers.
"""

from __future__ import annotations

import csv
import functools
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


# --------------------------------------------------------------------------------------------
# generation fakes
# --------------------------------------------------------------------------------------------

GENERATION_DEFINITIONS = {
    "validity": "A crystal is structurally valid when no two atoms are closer than 0.5 Å and compositionally "
                "valid when its composition is charge-neutral (SMACT); shares are of the requested crystals.",
    "coverage": "COV-R is the share of reference crystals, COV-P the share of valid generated crystals, that "
                "have a crystal of the other set within the fingerprint distance thresholds.",
    "success_rate": "The share of the requested crystals the model returned (not None).",
}
GENERATION_THRESHOLDS = {"structure": 0.5, "composition": "smact charge neutrality"}


@functools.lru_cache(maxsize=None)
def _from_spacegroup(sg: str, a: float, species: tuple, coords: tuple):
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup(sg, Lattice.cubic(a), list(species), [list(c) for c in coords])


def _scaled(sg: str, a: float, species: tuple, coords: tuple):
    """Factory: the (cached, slow to build) space-group structure with its lattice scaled."""
    from pymatgen.core import Structure

    def make(scale: float):
        base = _from_spacegroup(sg, a, species, coords)
        return Structure(base.lattice.matrix * scale, base.species, base.frac_coords)

    return make


def _prototypes():
    """(structure factory, compositionally valid) pairs: small real crystals, built with pymatgen."""
    from pymatgen.core import Lattice, Structure

    def perovskite(a, b, x, lat):
        return _scaled("Pm-3m", lat, (a, b, x), ((0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)))

    def oxynitride(scale):  # BaTiO2N-like, 5 sites / 4 elements as in perov_5
        return Structure(Lattice.cubic(4.08 * scale), ["Ba", "Ta", "O", "O", "N"],
                         [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])

    rocksalt = _scaled("Fm-3m", 5.64, ("Na", "Cl"), ((0, 0, 0), (0.5, 0.5, 0.5)))

    def collapsed(scale):  # an O atom 0.2 Å from Ti: structurally invalid
        return Structure(Lattice.cubic(3.9 * scale), ["Sr", "Ti", "O", "O", "O"],
                         [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.45], [0.5, 0, 0.5], [0, 0.5, 0.5]])

    return [
        (perovskite("Sr", "Ti", "O", 3.905), True),
        (oxynitride, True),
        (perovskite("K", "Mg", "F", 3.99), True),
        (collapsed, True),
        (rocksalt, True),
        (perovskite("Na", "Ti", "O", 3.95), False),  # Na+ Ti4+ 3 O2-: not charge neutral
    ]


def _emd_1d(a: np.ndarray, b: np.ndarray) -> float:
    """Earth mover's (Wasserstein-1) distance between two 1-D samples."""
    grid = np.sort(np.concatenate([a, b]))
    ca = np.searchsorted(np.sort(a), grid[:-1], side="right") / a.size
    cb = np.searchsorted(np.sort(b), grid[:-1], side="right") / b.size
    return float(np.sum(np.abs(ca - cb) * np.diff(grid)))


def _min_distance(structure) -> float:
    dm = structure.distance_matrix
    off = dm[~np.eye(len(structure), dtype=bool)]
    return float(min(off.min() if off.size else np.inf, min(structure.lattice.abc)))


def _write_generation(run_dir: Path, rng: np.random.Generator, n_requested: int, n_reference: int,
                      write_files: bool) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Write generated.cif/.csv for ``n_requested`` crystals; return ``(metrics, metric_details)``."""
    from pymatgen.io.cif import CifWriter

    protos = _prototypes()
    rows, blocks = [], []
    for i in range(n_requested):
        if i % 7 == 6:  # the model could not produce every 7th crystal
            rows.append({"index": i, "returned": False, "formula": "", "num_sites": "", "num_elements": "",
                         "density": "", "volume": "", "min_distance": "", "valid_structure": False,
                         "valid_composition": False, "valid": False})
            continue
        make, comp_ok = protos[i % len(protos)]
        st = make(float(rng.uniform(0.96, 1.05)))
        dmin = _min_distance(st)
        v_struct = dmin >= GENERATION_THRESHOLDS["structure"]
        cif = str(CifWriter(st))
        cif = cif[cif.index("data_"):].split("\n", 1)[1]
        blocks.append(f"data_generated_{i}\n{cif}")
        rows.append({"index": i, "returned": True, "formula": st.composition.reduced_formula,
                     "num_sites": len(st), "num_elements": len(st.composition.elements),
                     "density": round(float(st.density), 6), "volume": round(float(st.volume), 6),
                     "min_distance": round(dmin, 6), "valid_structure": v_struct,
                     "valid_composition": comp_ok, "valid": bool(v_struct and comp_ok)})
    if write_files:
        (run_dir / "generated.cif").write_text("".join(blocks), encoding="utf-8")
        with (run_dir / "generated.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    ref_density = np.round(np.clip(rng.normal(5.6, 1.1, n_reference), 2.0, None), 4)
    ref_nelem = rng.choice([3, 4, 5], size=n_reference, p=[0.3, 0.5, 0.2])
    valid = [r for r in rows if r["valid"]]
    n_returned = sum(r["returned"] for r in rows)
    gen_density = np.array([r["density"] for r in valid], dtype=float)
    gen_nelem = np.array([r["num_elements"] for r in valid], dtype=float)
    metrics = {
        "validity_structure": sum(r["valid_structure"] for r in rows) / n_requested,
        "validity_composition": sum(r["valid_composition"] for r in rows) / n_requested,
        "validity": len(valid) / n_requested,
        "COV-R": round(float(rng.uniform(0.9, 1.0)), 4),
        "COV-P": round(float(rng.uniform(0.8, 0.99)), 4),
        "EMD_density": _emd_1d(gen_density, ref_density) if valid else None,
        "EMD_num_elements": _emd_1d(gen_nelem, ref_nelem.astype(float)) if valid else None,
        "success_rate": n_returned / n_requested,
    }
    details = {
        "thresholds": dict(GENERATION_THRESHOLDS),
        "n_requested": n_requested, "n_returned": n_returned, "n_valid": len(valid), "n_reference": n_reference,
        "reference_density": [float(v) for v in ref_density],
        "reference_num_elements": [int(v) for v in ref_nelem],
        "fingerprint_cache_hit": False,
        "definition": dict(GENERATION_DEFINITIONS),
    }
    return metrics, details


# --------------------------------------------------------------------------------------------
# spectra fakes (phonon density of states)
# --------------------------------------------------------------------------------------------

SPECTRA_GRID = np.linspace(0.0, 1000.0, 51)  # cm^-1
SPECTRA_TEMPERATURE_K = 300.0
SPECTRA_DEFINITIONS = {
    "MAE": "Mean absolute error of the max-normalized DOS over all test crystals and the 51 grid points.",
    "Wasserstein": "Wasserstein-1 distance (cm^-1) between predicted and true DOS, each normalised to unit "
                   "area on the grid; mean over the test crystals.",
    "Cv_300K_MAE": "Mean absolute error of the harmonic heat capacity C_V(300 K) = 3R <E(hcw/kT)>_DOS "
                   "(Einstein function averaged over the DOS), in J/(K mol).",
}
_R = 8.314462618  # J/(K mol)
_C2 = 1.438776877  # hc/k_B in cm K


def spectra_cv(grid: np.ndarray, dos: np.ndarray, temperature: float = SPECTRA_TEMPERATURE_K) -> float | None:
    """Harmonic heat capacity (J/(K mol) of atoms) of a DOS on ``grid`` (cm^-1); ``None`` if empty."""
    x = _C2 * grid / temperature
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        einstein = np.where(x > 1e-8, x ** 2 * np.exp(x) / np.expm1(x) ** 2, 1.0)
    area = float(np.sum(dos))
    return None if area <= 0 else float(3 * _R * np.sum(dos * einstein) / area)


def spectra_wasserstein(grid: np.ndarray, a: np.ndarray, b: np.ndarray) -> float | None:
    """Wasserstein-1 distance (grid units) between two non-negative spectra normalised to unit area."""
    if a.sum() <= 0 or b.sum() <= 0:
        return None
    ca, cb = np.cumsum(a) / a.sum(), np.cumsum(b) / b.sum()
    return float(np.sum(np.abs(ca - cb)[:-1] * np.diff(grid)))


def _fake_spectra(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(true, predicted)``, each ``n x 51``: Gaussian-peak DOS, max-normalized; predictions are the
    truth shifted in frequency, rescaled and with noise (per-crystal quality varies a lot)."""
    grid = SPECTRA_GRID
    true = np.zeros((n, grid.size))
    pred = np.zeros((n, grid.size))
    onset = 1 - np.exp(-(grid / 60.0) ** 2)  # a DOS vanishes at zero frequency
    for i in range(n):
        k = int(rng.integers(2, 5))
        centres, widths, heights = rng.uniform(90, 900, k), rng.uniform(25, 80, k), rng.uniform(0.3, 1.0, k)

        def dos(shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
            g = sum(h * np.exp(-0.5 * ((grid - shift - c * scale) / w) ** 2)
                    for c, w, h in zip(centres, widths, heights))
            return g * onset

        t = dos()
        true[i] = t / t.max()
        quality = 0.4 + 3.0 * (i / max(1, n - 1)) ** 2 * rng.uniform(0.5, 1.5)
        p = dos(shift=rng.normal(0, 12 * quality), scale=1 + rng.normal(0, 0.02 * quality))
        p = np.clip(p / p.max() + rng.normal(0, 0.02 * quality, grid.size), 0, None)
        pred[i] = p / p.max()
    order = rng.permutation(n)  # quality does not follow the crystal order
    return np.round(true[order], 6), np.round(pred[order], 6)


def _spectra_metrics(true: np.ndarray, pred: np.ndarray) -> tuple[dict[str, float | None], dict[str, Any]]:
    grid = SPECTRA_GRID
    err = pred - true
    mse = float(np.mean(err ** 2))
    cv_true = [spectra_cv(grid, t) for t in true]
    cv_pred = [spectra_cv(grid, p) for p in pred]
    wass = [spectra_wasserstein(grid, t, p) for t, p in zip(true, pred)]
    cv_err = [abs(a - b) for a, b in zip(cv_true, cv_pred) if a is not None and b is not None]
    w_ok = [w for w in wass if w is not None]
    metrics = {"MAE": float(np.mean(np.abs(err))), "MSE": mse, "RMSE": math.sqrt(mse),
               "R2": float(1 - np.sum(err ** 2) / np.sum((true - true.mean()) ** 2)),
               "Wasserstein": float(np.mean(w_ok)) if w_ok else None,
               "Cv_300K_MAE": float(np.mean(cv_err)) if cv_err else None}
    details = {"grid": [float(v) for v in grid], "grid_unit": "cm^-1", "temperature_K": SPECTRA_TEMPERATURE_K,
               "per_crystal": {"MSE": [float(v) for v in np.mean(err ** 2, axis=1)], "Wasserstein": wass,
                               "Cv_300K_true": cv_true, "Cv_300K_pred": cv_pred},
               "definition": dict(SPECTRA_DEFINITIONS)}
    return metrics, details


# --------------------------------------------------------------------------------------------
# the fake run directory
# --------------------------------------------------------------------------------------------


def make_fake_run(run_dir: Path, *, task_type: str = "regression", status: str = "ok",
                  display_name: str = "Fake Model", run_id: str | None = None, gpu: bool = False,
                  seed: int = 0, n_test: int = 150, n_epochs: int = 12, n_samples: int = 700,
                  write_timeseries: bool = True, write_predictions: bool | None = None,
                  n_generated: int = 24, write_generated: bool | None = None, n_crystals: int = 12,
                  crystal_ids: list[str] | None = None) -> dict[str, Any]:
    """Write a fake ``results/<run_id>/`` directory and return its ``result.json`` content.

    Args:
        run_dir: directory to create (its name is the default run id).
        task_type: ``"regression"``, ``"classification"``, ``"generation"`` or ``"spectra"``.
        status: ``"ok"``, ``"failed"``, ``"timeout"`` or ``"oom"``; a non-ok run gets an error
            block, a short history, no metrics and (by default) no predictions.csv.
        display_name: ``model.display_name`` (put markup here to test escaping).
        gpu: record ``gpu:0`` metrics; otherwise every GPU metric is listed as unavailable.
        n_samples: rows of timeseries.csv (more than 500 exercises downsampling).
        n_generated: generation: crystals requested (every 7th is not returned; ``n_test`` is the
            size of the reference set).
        write_generated: generation: write generated.cif and generated.csv (default: when ok).
        n_crystals: spectra: test crystals (each a 51-point DOS on 0..1000 cm^-1).
        crystal_ids: spectra: their ids (default ``mp-<n>``; put markup here to test escaping).
    """
    if task_type not in ("regression", "classification", "generation", "spectra"):
        raise ValueError(task_type)
    is_gen = task_type == "generation"
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = run_id or run_dir.name
    rng = np.random.default_rng(seed)
    ok = status == "ok"
    if write_predictions is None:
        write_predictions = ok and not is_gen
    if write_generated is None:
        write_generated = ok and is_gen
    last_phase = "generate" if is_gen else "predict"

    # --- telemetry ------------------------------------------------------------------------
    interval = 0.5
    n = n_samples if ok else max(20, n_samples // 3)
    elapsed = np.arange(n) * interval
    n_setup = max(2, n // 20)
    n_predict = max(2, n // 8) if ok else 0
    phase = np.array(["setup"] * n_setup + ["train"] * (n - n_setup - n_predict) + [last_phase] * n_predict)
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
    for name in ("train", last_phase):
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
    rows: list = []
    header: list[str] = []
    if is_gen:
        if ok:
            metrics, details = _write_generation(run_dir, rng, n_generated, n_test, write_generated)
    elif task_type == "spectra":
        n_test = n_crystals
        ids = list(crystal_ids) if crystal_ids is not None else [f"mp-{2000 + 37 * i}" for i in range(n_test)]
        if len(ids) != n_test:
            raise ValueError("crystal_ids must have n_crystals entries")
        true, pred = _fake_spectra(rng, n_test)
        if ok:
            metrics, details = _spectra_metrics(true, pred)
        rows = [[cid, f"{f:g}", f"{t:.6f}", f"{p:.6f}"]
                for cid, ts, ps in zip(ids, true, pred) for f, t, p in zip(SPECTRA_GRID, ts, ps)]
        header = ["id", "frequency", "target", "prediction"]
    elif task_type == "regression":
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
    if write_predictions and header:
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
                        "loss_name": {"regression": "L1Loss", "classification": "BCEWithLogitsLoss",
                                      "spectra": "MSELoss (DOS)"}.get(
                            task_type, "VAE loss (coord + type + lattice + KLD)"),
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
    if write_predictions and header:
        files["predictions"] = "predictions.csv"
    if write_generated and ok:
        files["generated_cif"] = "generated.cif"
        files["generated_csv"] = "generated.csv"

    is_reg = task_type == "regression"
    task_block = {"name": "perov5_heat_ref" if is_reg else "perov5_gap_positive",
                  "target": "heat_ref" if is_reg else "ind_gap",
                  "unit": "eV/atom" if is_reg else None,
                  "positive_class": None if is_reg else "ind_gap > 0 eV"}
    sizes = {"train": 15142, "val": 1893, "test": n_test}
    dataset_name = "perov_5"
    if is_gen:
        task_block = {"name": "perov5_generation", "target": "structure", "unit": None, "positive_class": None}
        sizes = {"train": 17035, "val": 0, "test": n_test}
    elif task_type == "spectra":
        task_block = {"name": "phdos", "target": "phdos", "unit": "max-normalized", "positive_class": None,
                      "description": "phonon density of states on a 51-point grid, 0-1000 cm^-1"}
        sizes = {"train": 1217, "val": 152, "test": n_test}
        dataset_name = "phdos_e3nn"
    result: dict[str, Any] = {
        "schema_version": "1.0",
        "run_id": run_id,
        "model": {"name": "fake_model", "display_name": display_name, "entry_point": "fake.adapter:FakeAdapter",
                  "paper": {"title": "A fake model for tests", "year": 2024}},
        "task": task_block,
        "task_type": task_type,
        "dataset": {"name": dataset_name, "variant": "full", "split": "random 80/10/10",
                    "sizes": sizes,
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
