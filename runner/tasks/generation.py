"""Task type ``generation``: learn the training crystals' distribution, generate new crystals, and
score them against the test split as the reference set.

The model's ``generate(n)`` returns ``n`` entries (a pymatgen ``Structure`` or ``None``); the model
stage writes them losslessly as ``generated_structures.json`` (``Structure.as_dict()`` or ``null``
per request). The scoring stage reads them back, writes ``generated.cif`` and ``generated.csv``
and scores them with :func:`score`.

The metrics are CDVAE's (Xie et al., ICLR 2022), computed by :mod:`metrics.generation`; the
fingerprints are computed (in parallel, reference set cached) by :mod:`runner.fingerprints`.
``COV-R``/``COV-P`` are CDVAE's published definition (see below); no variant is computed.

Which crystals enter which metric:

- validity and ``success_rate``: all requested crystals (a ``None`` counts as invalid / failed);
- coverage (``COV-R``, ``COV-P``): CDVAE's ``compute_cov`` as ``GenEval.get_coverage`` calls it
  (``scripts/eval_utils.py``, ``scripts/compute_metrics.py`` of github.com/txie-93/cdvae): every
  returned crystal whose CrystalNN fingerprint could be computed, *valid or not*; compositions
  standardized with CDVAE's fixed Magpie scaler; the dataset's cutoffs (CDVAE's ``COV_Cutoffs``);
  COV-P divided by the number of *requested* crystals (CDVAE: the number of generated crystals
  before any filtering; a crystal the model did not return is one CDVAE could not fingerprint).
  ``fingerprint_failures`` counts returned crystals whose fingerprint failed; reference crystals
  whose fingerprint failed are left out of the reference set (``reference_fingerprint_failures``;
  CDVAE's code would stop there);
- EMDs: all valid generated crystals against all reference crystals.

Undefined values are NaN: with no returned crystal that has a fingerprint, ``COV-R`` and ``COV-P``
are NaN; with no valid generated crystal, ``EMD_density`` and ``EMD_num_elements`` are NaN.

All fingerprints of one scoring call (generated crystals and, on a cache miss, the reference set)
are computed by one :class:`runner.fingerprints.FingerprintPool`.

Baseline (:meth:`Generation.baseline`): training crystals drawn at random (without replacement,
seeded by the run's seed), as many as the model was asked for but at most
:data:`BASELINE_MAX_CRYSTALS`, scored by the same :func:`score` as if generated. It costs one more
fingerprinting of that many crystals (the reference set's fingerprints are cached). Flag
(:meth:`Generation.flags`): ``all_invalid`` (no requested crystal is valid).
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from metrics import catalogue
from metrics import generation as gen_metrics
from runner import fingerprints
from runner.contract import Sample, TaskSpec
from runner.result import atomic_write_text
from runner.tasks.base import (MAX_OUTPUT_BYTES, Baseline, Flag, OutputError, Scored, ScoringContext, TaskType,
                               definitions)
from runner.wire import GENERATED_CIF, GENERATED_CSV, GENERATED_STRUCTURES_FILE

STRUCTURE_CUTOFF_A = 0.5
MIN_VOLUME_A3 = 0.1
#: most training crystals the baseline scores (its cost is fingerprinting them, like the model's)
BASELINE_MAX_CRYSTALS = 200
#: the metric keys of :func:`score`, in the catalogue's order
METRIC_KEYS = catalogue.names("generation")


def _entries(values: Sequence[Any], name: str, *, allow_none: bool) -> list:
    from pymatgen.core import Structure

    entries = list(values)
    for i, s in enumerate(entries):
        if not (isinstance(s, Structure) or (allow_none and s is None)):
            raise ValueError(f"{name}[{i}] must be a pymatgen Structure{' or None' if allow_none else ''}; "
                             f"got {type(s).__name__}")
    return entries


def _cutoffs(dataset: str) -> tuple[float, float]:
    try:
        return gen_metrics.COVERAGE_CUTOFFS[dataset]
    except KeyError:
        raise ValueError(f"no coverage cutoffs for dataset {dataset!r}; known: "
                         f"{', '.join(sorted(gen_metrics.COVERAGE_CUTOFFS))}") from None


def score(
    generated: Sequence[Any],
    reference: Sequence[Any],
    *,
    dataset: str,
    cache_dir: Path | None,
    n_jobs: int | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """CDVAE's generation metrics of ``generated`` against ``reference``.

    Args:
        generated: one entry per requested crystal: a pymatgen ``Structure`` or ``None`` (the
            model failed to return it).
        reference: the reference crystals (the test split), at least one.
        dataset: dataset name selecting the coverage cutoffs
            (:data:`metrics.generation.COVERAGE_CUTOFFS`).
        cache_dir: folder for the reference set's fingerprint cache; ``None``: no cache.
        n_jobs: fingerprinting processes (``None``: all cores; 1: serial).

    Returns:
        ``(metrics, details)``. ``metrics`` has exactly the keys ``validity_structure``,
        ``validity_composition``, ``validity``, ``COV-R``, ``COV-P``, ``EMD_density`` (g/cm^3),
        ``EMD_num_elements`` and ``success_rate`` (floats; NaN where undefined: coverage without
        a returned crystal that has a fingerprint, EMDs without a valid generated crystal).
        ``details``: ``thresholds`` (``structure``, ``composition``), ``n_requested``,
        ``n_returned``, ``n_valid``, ``n_reference``, ``n_coverage`` (returned crystals with a
        fingerprint, valid or not), ``reference_density`` (g/cm^3), ``reference_num_elements``,
        ``fingerprint_cache_hit``, ``fingerprint_failures`` (returned crystals whose CrystalNN
        fingerprint failed),
        ``reference_fingerprint_failures``, ``seconds`` (scoring wall time) and ``definition``
        (one sentence each for ``validity``, ``coverage`` and ``success_rate``).

    Raises:
        ValueError: an unknown dataset, an empty ``generated`` or ``reference``, an entry of the
            wrong type, or ``n_jobs`` not a positive integer.
        runner.fingerprints.WorkerStartError: a fingerprint worker process died or could not
            start (e.g. a calling script without an ``if __name__ == "__main__":`` guard).
    """
    t0 = time.perf_counter()
    s_cut, c_cut = _cutoffs(dataset)
    generated = _entries(generated, "generated", allow_none=True)
    reference = _entries(reference, "reference", allow_none=False)
    if not generated:
        raise ValueError("generated is empty; at least one requested crystal is required")
    if not reference:
        raise ValueError("reference is empty; at least one reference crystal is required")
    n_requested = len(generated)

    returned = [s for s in generated if s is not None]

    with fingerprints.FingerprintPool(n_jobs) as pool:
        # fingerprints first: the workers start and compute while this process does the rest
        gen_batch = pool.submit(returned, "fingerprinting generated crystals")
        ref_cached, ref_path = fingerprints.cached_reference_fingerprints(reference, cache_dir)
        # queued behind, no idle core
        ref_batch = pool.submit(reference, "fingerprinting reference crystals") if ref_cached is None else None

        s_valid = gen_metrics.structure_validity(generated, STRUCTURE_CUTOFF_A, MIN_VOLUME_A3)
        c_valid = gen_metrics.composition_validity(generated)
        valid = s_valid & c_valid
        valid_structures = [generated[i] for i in np.flatnonzero(valid)]
        ref_density = [gen_metrics.crystal_density(s) for s in reference]
        ref_nelem = [gen_metrics.num_distinct_elements(s) for s in reference]
        gen_density = [gen_metrics.crystal_density(s) for s in valid_structures]  # valid: volume >= 0.1
        gen_nelem = [gen_metrics.num_distinct_elements(s) for s in valid_structures]

        gen_s, gen_c = pool.result(gen_batch)
        ref_s, ref_c = ref_cached if ref_batch is None else pool.result(ref_batch)
    if ref_batch is not None:
        fingerprints.store_reference_fingerprints(ref_path, ref_s, ref_c)
    cache_hit = ref_cached is not None
    gen_failed = fingerprints.failed_rows(gen_s)
    ref_failed = fingerprints.failed_rows(ref_s)

    cov = {"COV-R": math.nan, "COV-P": math.nan}
    if (~gen_failed).any() and (~ref_failed).any():
        cov = gen_metrics.coverage(gen_s[~gen_failed], gen_c[~gen_failed], ref_s[~ref_failed], ref_c[~ref_failed],
                                   s_cut, c_cut, n_requested=n_requested)

    values = {
        "validity_structure": float(np.mean(s_valid)),
        "validity_composition": float(np.mean(c_valid)),
        "validity": float(np.mean(valid)),
        "COV-R": float(cov["COV-R"]),
        "COV-P": float(cov["COV-P"]),
        "EMD_density": gen_metrics.emd(gen_density, [d for d in ref_density if math.isfinite(d)]),
        "EMD_num_elements": gen_metrics.emd(gen_nelem, ref_nelem),
        "success_rate": gen_metrics.success_rate(n_requested, generated),
    }
    metrics = {name: values[name] for name in METRIC_KEYS}
    details = {
        "thresholds": {"structure": s_cut, "composition": c_cut},
        "n_requested": n_requested,
        "n_returned": sum(s is not None for s in generated),
        "n_valid": int(valid.sum()),
        "n_reference": len(reference),
        "n_coverage": int((~gen_failed).sum()),
        "reference_density": [float(d) for d in ref_density],
        "reference_num_elements": [int(n) for n in ref_nelem],
        "fingerprint_cache_hit": bool(cache_hit),
        "fingerprint_failures": int(gen_failed.sum()),
        "reference_fingerprint_failures": int(ref_failed.sum()),
        "seconds": round(time.perf_counter() - t0, 3),
        "definition": definitions("generation", {"validity": "validity", "coverage": "COV-R",
                                                 "success_rate": "success_rate"},
                                  cutoff=STRUCTURE_CUTOFF_A, min_volume=MIN_VOLUME_A3, structure=s_cut,
                                  composition=c_cut),
    }
    return metrics, details


def generated_rows(generated: Sequence[Any]) -> dict[str, list]:
    """Columns of ``generated.csv``, one row per requested crystal.

    ``index`` (0-based request index), ``returned`` (bool), ``formula`` (reduced formula),
    ``num_sites``, ``num_elements``, ``density`` (g/cm^3), ``volume`` (Å^3), ``min_distance``
    (Å, periodic images included; NaN for a degenerate cell), ``valid_structure``,
    ``valid_composition``, ``valid``. A crystal not returned has ``returned`` False, empty strings
    in the descriptive columns and False validity.
    """
    generated = _entries(generated, "generated", allow_none=True)
    s_valid = gen_metrics.structure_validity(generated, STRUCTURE_CUTOFF_A, MIN_VOLUME_A3)
    c_valid = gen_metrics.composition_validity(generated)
    cols: dict[str, list] = {k: [] for k in ("index", "returned", "formula", "num_sites", "num_elements", "density",
                                             "volume", "min_distance", "valid_structure", "valid_composition",
                                             "valid")}
    for i, s in enumerate(generated):
        cols["index"].append(i)
        cols["returned"].append(s is not None)
        if s is None:
            for k in ("formula", "num_sites", "num_elements", "density", "volume", "min_distance"):
                cols[k].append("")
        else:
            cols["formula"].append(s.composition.reduced_formula)
            cols["num_sites"].append(len(s))
            cols["num_elements"].append(gen_metrics.num_distinct_elements(s))
            cols["density"].append(gen_metrics.crystal_density(s))
            cols["volume"].append(float(s.volume))
            cols["min_distance"].append(gen_metrics.min_interatomic_distance(s))
        cols["valid_structure"].append(bool(s_valid[i]))
        cols["valid_composition"].append(bool(c_valid[i]))
        cols["valid"].append(bool(s_valid[i] and c_valid[i]))
    return cols


_BLOCK_NAME = "generated_{index}"
_DATA_LINE = re.compile(r"^data_\S*", re.MULTILINE)


def write_cif(path: Path | str, generated: Sequence[Any]) -> None:
    """Write every returned crystal to ONE CIF file, atomically (temporary file + ``os.replace``).

    One ``data_generated_<index>`` block per returned structure (pymatgen ``CifWriter``, P1, all
    sites), in request order; ``None`` entries are skipped, so the indices identify the requests.
    A structure ``CifWriter`` cannot write is replaced by a comment line naming its index.
    """
    from pymatgen.io.cif import CifWriter

    generated = _entries(generated, "generated", allow_none=True)
    parts = [f"# mateval: {sum(s is not None for s in generated)} generated crystals of {len(generated)} requested\n"]
    for i, s in enumerate(generated):
        if s is None:
            continue
        try:
            text = str(CifWriter(s))
        except Exception as exc:  # noqa: BLE001 - one bad crystal must not lose the others
            reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
            parts.append(f"# generated_{i}: not written ({reason})\n")
            continue
        text, n_sub = _DATA_LINE.subn(f"data_{_BLOCK_NAME.format(index=i)}", text, count=1)
        if n_sub != 1:
            text = f"data_{_BLOCK_NAME.format(index=i)}\n{text}"
        parts.append(text if text.endswith("\n") else text + "\n")
    atomic_write_text(Path(path), "".join(parts))


def read_cif(path: Path | str) -> list[tuple[int, Any]]:
    """Read a file written by :func:`write_cif`: ``[(index, Structure), ...]`` in file order.

    Each ``data_generated_<index>`` block is read with pymatgen's low-level ``CifFile`` and the
    structure rebuilt directly from the cell parameters and the P1 ``_atom_site`` loop (species,
    fractional coordinates, occupancy), so nothing is merged or rounded: overlapping atoms survive a
    round trip, which ``CifParser`` would merge. Lattices are rebuilt from the cell parameters
    (``Lattice.from_parameters``: same lengths and angles, the Cartesian orientation may differ
    from the original).

    Raises:
        ValueError: a block not named ``data_generated_<index>``, a block that is not in P1 or
            lacks the cell or atom-site fields (the message names the block).
    """
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifFile

    text = Path(path).read_text(encoding="utf-8")
    out: list[tuple[int, Any]] = []
    for name, block in CifFile.from_str(text).data.items():
        m = re.fullmatch(r"generated_(\d+)", name)
        if m is None:
            raise ValueError(f"{path}: CIF block data_{name} is not named data_generated_<index>")
        data = block.data
        try:
            ops = data.get("_symmetry_equiv_pos_as_xyz", ["x, y, z"])
            ops = [ops] if isinstance(ops, str) else ops
            if [op.replace(" ", "").lower() for op in ops] != ["x,y,z"]:
                raise ValueError(f"symmetry operations {ops} are not P1")
            params = [float(data[f"_cell_length_{k}"]) for k in "abc"]
            params += [float(data[f"_cell_angle_{k}"]) for k in ("alpha", "beta", "gamma")]
            columns = [data[f"_atom_site_{k}"] for k in ("type_symbol", "fract_x", "fract_y", "fract_z")]
            columns = [[c] if isinstance(c, str) else list(c) for c in columns]
            occupancy = data.get("_atom_site_occupancy", ["1"] * len(columns[0]))
            occupancy = [occupancy] if isinstance(occupancy, str) else list(occupancy)
            species = [sym if float(occ) == 1.0 else {sym: float(occ)} for sym, occ in zip(columns[0], occupancy)]
            coords = np.array([[float(x), float(y), float(z)] for x, y, z in zip(*columns[1:])], dtype=np.float64)
            structure = Structure(Lattice.from_parameters(*params), species, coords)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{path}: CIF block data_{name} cannot be read: {type(exc).__name__}: {exc}") from None
        out.append((int(m.group(1)), structure))
    return out


def _strict_json(value: Any) -> bool:
    """``value`` can be written as strict JSON (no NaN, no infinities)."""
    import json

    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def check_generated(values: Any, n: int) -> list:
    """The adapter's ``generate(n)`` return value as a list of ``n`` Structures or ``None``.

    Raises:
        ValueError: another length, or an entry that is neither.
    """
    from pymatgen.core import Structure

    generated = list(values) if values is not None else []
    if len(generated) != n:
        raise ValueError(f"model returned {len(generated)} entries from generate({n}); expected {n} "
                         "(None for a crystal it could not produce)")
    bad = [i for i, s in enumerate(generated) if s is not None and not isinstance(s, Structure)]
    if bad:
        raise ValueError(f"generate() entries {bad[:5]} are neither pymatgen Structures nor None")
    return generated


class Generation(TaskType):
    """See the module docstring."""

    name = "generation"
    adapter_method = "generate"
    phase = "generate"
    output_file = GENERATED_STRUCTURES_FILE

    def check_targets(self, task: TaskSpec, samples: Mapping[str, Sequence[Sample]]) -> None:
        if not samples.get("train"):
            raise ValueError("a generation task needs training crystals")

    def model_task(self, task: TaskSpec, train: Sequence[Sample]) -> TaskSpec:
        import dataclasses

        elements = sorted({el for s in train for el in s.structure.composition.elements}, key=lambda e: e.Z)
        return dataclasses.replace(task, max_atoms=max(len(s.structure) for s in train),
                                   elements=tuple(el.symbol for el in elements))

    def encode_target(self, value: Any) -> Any:
        return None

    def decode_target(self, value: Any) -> Any:
        return None

    def run_model(self, adapter: Any, test: Sequence[Sample], task: TaskSpec, settings: Mapping[str, Any]) -> Any:
        return adapter.generate(int(settings["num_samples"]))

    def write_output(self, run_dir: Path, raw: Any, test: Sequence[Sample], task: TaskSpec,
                     settings: Mapping[str, Any]) -> dict[str, str]:
        import json

        generated = check_generated(raw, int(settings["num_samples"]))
        entries = [None if s is None else s.as_dict() for s in generated]
        try:
            text = json.dumps(entries, allow_nan=False)  # strict JSON: never NaN or Infinity
        except ValueError:
            bad = [i for i, entry in enumerate(entries) if not _strict_json(entry)]
            raise ValueError(f"generate() entries {bad[:5]} hold NaN or infinite numbers (lattice, coordinates "
                             "or properties); return None for a crystal the model could not produce") from None
        atomic_write_text(Path(run_dir) / self.output_file, text)
        return {"generated_structures": self.output_file}

    def read_output(self, run_dir: Path, test: Sequence[Sample], task: TaskSpec) -> Any:
        from pymatgen.core import Structure

        from runner import safefiles

        path = Path(run_dir) / self.output_file
        try:
            entries = safefiles.load_json(path, max_bytes=MAX_OUTPUT_BYTES)
        except FileNotFoundError:
            raise OutputError(f"{path}: the model output is missing") from None
        except OSError as exc:  # RefusedFile: a link, not a regular file, too large, too deep
            raise OutputError(f"{path}: {safefiles.describe(exc)}") from None
        except ValueError as exc:
            raise OutputError(f"{path}: not valid JSON: {type(exc).__name__}: {str(exc)[:200]}") from None
        if not isinstance(entries, list) or not entries:
            raise OutputError(f"{path}: expected a non-empty JSON list of structures or null")
        generated = []
        for index, entry in enumerate(entries):
            if entry is None:
                generated.append(None)
                continue
            try:
                generated.append(Structure.from_dict(entry))
            except Exception as exc:  # noqa: BLE001 - any malformed entry is the model's error, named
                raise OutputError(f"{path}: entry {index} is not a pymatgen structure: {type(exc).__name__}: "
                                  f"{str(exc)[:200]}") from None
        return generated

    def score(self, output: Any, test: Sequence[Sample], task: TaskSpec, context: ScoringContext) -> Scored:
        write_cif(Path(context.run_dir) / GENERATED_CIF, output)
        values, details = score(output, [s.structure for s in test], dataset=context.dataset,
                                cache_dir=context.cache_dir, n_jobs=context.n_jobs)
        from runner.result import write_csv

        write_csv(Path(context.run_dir) / GENERATED_CSV, generated_rows(output))
        return Scored(values, details, {"generated_cif": GENERATED_CIF, "generated_csv": GENERATED_CSV})

    def baseline(self, output: Any, train: Sequence[Sample], test: Sequence[Sample], task: TaskSpec,
                 context: ScoringContext) -> Baseline:
        n = min(len(output), len(train), BASELINE_MAX_CRYSTALS)
        if n == 0:
            raise ValueError("no training crystal to sample the baseline from")
        picks = sorted(int(i) for i in np.random.default_rng(context.seed).choice(len(train), size=n, replace=False))
        values, details = score([train[i].structure for i in picks], [s.structure for s in test],
                                dataset=context.dataset, cache_dir=context.cache_dir, n_jobs=context.n_jobs)
        capped = (f" (capped at {BASELINE_MAX_CRYSTALS}; the model was asked for {len(output)})"
                  if n < len(output) else "")
        return Baseline(f"{n} training crystals drawn at random without replacement (seed {context.seed}){capped}, "
                        "scored as if generated", values,
                        {"n_sampled": n, "n_train": len(train), "n_requested": len(output), "seed": context.seed,
                         "train_ids": [train[i].id for i in picks], "n_valid": details["n_valid"],
                         "seconds": details["seconds"]})

    def flags(self, output: Any, test: Sequence[Sample], task: TaskSpec, scored: Scored) -> list[Flag]:
        n_valid, n_requested = scored.details.get("n_valid"), scored.details.get("n_requested")
        if n_valid == 0:
            returned = scored.details.get("n_returned")
            return [Flag("all_invalid", f"none of the {n_requested} requested crystals is valid ({returned} returned)")]
        return []


TASK_TYPE = Generation()
