"""Report section of generation runs (``task_type: "generation"``): the metrics in the reference
framework's (CDVAE's) terms, a table of counts, histograms of density and number of elements (valid
generated crystals from ``generated.csv`` against the reference lists in ``metric_details``) and
drawings of the first few valid crystals of ``generated.cif``; a missing or corrupt
``generated.csv`` / ``generated.cif`` gives a note instead."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import orchestrator.report.plots as plots
from ..figures import read_csv, run_file, safe_plot
from ..formatting import as_dict, as_list, dig, is_num, short_json
from ..views import Figure, RunView
from .base import Section

#: Keys of ``result['files']`` that may name the generation outputs (first match wins).
_GEN_CSV_KEYS = ("generated_csv", "generated")
_GEN_CIF_KEYS = ("generated_cif", "structures", "cif", "generated")
#: Generated crystals drawn per run.
MAX_DRAWN_STRUCTURES = 4
#: Blocks of generated.cif tried at most (bounds the time spent on a corrupt file).
_MAX_PARSE_ATTEMPTS = 40
_MAX_CIF_BYTES = 512 * 1024 * 1024
_TRUE_WORDS = {"true", "1", "yes", "y", "t", "1.0"}
_CIF_BLOCK = re.compile(r"^data_generated_(\d+)\s*$")


def _gen_file(run_dir: Path, result: dict, keys: Sequence[str], default: str) -> Path:
    suffix = Path(default).suffix
    for key in keys:
        name = dig(result, "files", key)
        if isinstance(name, str) and name.lower().endswith(suffix):
            return run_file(run_dir, result, key, default)
    return run_dir / default


def _truthy(values: Sequence) -> list[bool]:
    """A CSV column of booleans (True/False, 1/0, yes/no; NaN is False) as Python bools."""
    out = []
    for v in values:
        if isinstance(v, bool) or type(v).__name__ == "bool_":
            out.append(bool(v))
        elif isinstance(v, (int, float)) or type(v).__module__ == "numpy":
            try:
                out.append(bool(math.isfinite(float(v)) and float(v) != 0))
            except (TypeError, ValueError):
                out.append(False)
        else:
            out.append(str(v).strip().lower() in _TRUE_WORDS)
    return out


def _generated_frame(run_dir: Path, result: dict):
    """``(frame, note)`` for generated.csv (any columns; callers check the ones they need)."""
    return read_csv(_gen_file(run_dir, result, _GEN_CSV_KEYS, "generated.csv"), [])


def _valid_mask(frame) -> tuple[list[bool], str]:
    """Rows counted as generated-and-valid, and how they were chosen (for captions)."""
    if "valid" in frame.columns:
        mask = _truthy(frame["valid"].tolist())
        if "returned" in frame.columns:
            mask = [a and b for a, b in zip(mask, _truthy(frame["returned"].tolist()))]
        return mask, "valid"
    if "returned" in frame.columns:
        return _truthy(frame["returned"].tolist()), "returned (generated.csv has no 'valid' column)"
    return [True] * len(frame), "all rows (generated.csv has neither 'valid' nor 'returned')"


def _generation_figures(run_dir: Path, result: dict, metrics: Mapping) -> list[Figure]:
    import pandas as pd

    details = as_dict(result.get("metric_details"))
    frame, note = _generated_frame(run_dir, result)
    figs = []
    specs = (
        ("hist-density", "Density: generated vs reference", "density", "reference_density", "EMD_density",
         plots.density_histogram_svg, "Density (g/cm³)", "each normalised to unit area"),
        ("hist-elements", "Number of elements: generated vs reference", "num_elements", "reference_num_elements",
         "EMD_num_elements", plots.num_elements_histogram_svg, "Number of distinct elements per crystal",
         "as fractions of each set"),
    )
    for key, heading, column, ref_key, emd_key, draw, what, norm in specs:
        fig = Figure(key, heading)
        figs.append(fig)
        if frame is None:
            fig.note = note
            continue
        if column not in frame.columns:
            fig.note = f"generated.csv lacks column {column} — figure skipped."
            continue
        mask, chosen = _valid_mask(frame)
        values = pd.to_numeric(frame[column], errors="coerce")
        gen = [float(v) for v, keep in zip(values.tolist(), mask) if keep and is_num(float(v))]
        ref_raw = details.get(ref_key)
        ref = [float(v) for v in as_list(ref_raw) if is_num(v)]
        emd = metrics.get(emd_key)
        emd = float(emd) if is_num(emd) else None
        caption = (f"{what} of the generated crystals ({chosen}, n = {len(gen):,}) and of the reference "
                   f"crystals (test split, n = {len(ref):,}), {norm}; EMD as reported in result.json.")
        if not ref:
            caption += f" metric_details has no {ref_key}: the reference is not drawn."
        if not gen:
            caption += " No generated crystal is in this set: only the reference is drawn."
        fig.caption = caption
        safe_plot(fig, lambda: draw(gen, ref, emd),
                   f"No finite {column} values in generated.csv nor in metric_details.{ref_key} — figure skipped.")
    return figs


def _count_text(n: Any, total: Any, of: str) -> str:
    text = f"{int(n):,}" if is_num(n) and float(n).is_integer() else short_json(n)
    if is_num(n) and is_num(total) and total > 0:
        text += f" ({n / total * 100:.1f} % of {of})"
    return text


def _generation_view(run_dir: Path, result: dict, run: RunView) -> dict:
    """Counts, definitions and drawings of a few generated crystals for a generation run's section."""
    details = as_dict(result.get("metric_details"))
    frame, _ = _generated_frame(run_dir, result)
    from_csv: dict[str, int] = {}
    if frame is not None:
        from_csv["n_requested"] = len(frame)
        if "returned" in frame.columns:
            from_csv["n_returned"] = sum(_truthy(frame["returned"].tolist()))
        if "valid" in frame.columns:
            from_csv["n_valid"] = sum(_valid_mask(frame)[0])
    ref_list = [v for v in as_list(details.get("reference_density")) if is_num(v)]
    if ref_list:
        from_csv["n_reference"] = len(ref_list)

    used_csv: list[str] = []

    def count(key: str) -> Any:
        v = details.get(key)
        if is_num(v):
            return v
        if key in from_csv:
            used_csv.append(key)
            return from_csv[key]
        return None

    n_req, n_ret, n_valid, n_ref = (count(k) for k in ("n_requested", "n_returned", "n_valid", "n_reference"))
    counts: list[tuple[str, str]] = []
    if n_req is not None:
        counts.append(("Requested", _count_text(n_req, None, "")))
    if n_ret is not None:
        counts.append(("Returned", _count_text(n_ret, n_req, "requested")))
    if n_valid is not None:
        text = _count_text(n_valid, None, "")
        shares = [f"{n_valid / n * 100:.1f} % of {of}" for n, of in ((n_req, "requested"), (n_ret, "returned"))
                  if is_num(n_valid) and is_num(n) and n > 0]
        counts.append(("Valid", f"{text} ({', '.join(shares)})" if shares else text))
    if n_ref is not None:
        counts.append(("Reference crystals", _count_text(n_ref, None, "") + " (test split)"))
    thresholds = details.get("thresholds")
    if isinstance(thresholds, Mapping) and thresholds:
        counts.append(("Validity thresholds", " · ".join(f"{k}: {short_json(v)}" for k, v in thresholds.items())))
    elif thresholds is not None:
        counts.append(("Validity thresholds", short_json(thresholds)))
    hit = details.get("fingerprint_cache_hit")
    if isinstance(hit, bool):
        counts.append(("Fingerprint cache", "hit (reference fingerprints loaded from the cache)" if hit
                       else "miss (reference fingerprints computed in this run)"))
    elif hit is not None:
        counts.append(("Fingerprint cache", short_json(hit)))
    if used_csv:
        counts.append(("Source", f"{', '.join(used_csv)} counted from generated.csv / metric_details lists "
                                 "(not recorded in metric_details)"))
    definitions = [(str(k).replace("_", " "), short_json(v, 1000))
                   for k, v in as_dict(details.get("definition")).items() if v not in (None, "")]

    structures = _structure_gallery(_gen_file(run_dir, result, _GEN_CIF_KEYS, "generated.cif"), frame)
    return {"counts": counts, "definitions": definitions, **structures}


def _block_index(name_line: str) -> int | None:
    m = _CIF_BLOCK.match(name_line.strip())
    return int(m.group(1)) if m else None


def _split_cif(text: str) -> list[tuple[int | None, str]]:
    """``[(index or None, block text)]`` for every ``data_`` block of a multi-block CIF."""
    blocks = []
    for part in re.split(r"(?m)^(?=data_)", text):
        if part.startswith("data_"):
            first = part.split("\n", 1)[0]
            blocks.append((_block_index(first), part))
    return blocks


def _structure_item(structure: Any) -> dict:
    symbols, colours, radii = [], [], []
    for site in structure:
        species = max(site.species.items(), key=lambda kv: kv[1])[0]  # majority species on a site
        el = getattr(species, "element", species)
        symbol = str(getattr(el, "symbol", "X"))
        z = int(getattr(el, "Z", 0) or 0)
        radius = getattr(el, "atomic_radius", None)
        symbols.append(symbol)
        colours.append(plots.element_rgb(symbol, z))
        radii.append(float(radius) if radius is not None else 1.0)
    legend, seen = [], set()
    for symbol, rgb in zip(symbols, colours):
        if symbol not in seen:
            seen.add(symbol)
            legend.append((symbol, "#%02x%02x%02x" % tuple(int(round(c * 255)) for c in rgb)))
    svg = plots.structure_svg(structure.lattice.matrix, structure.frac_coords, colours, radii)
    try:
        density = f"{float(structure.density):.2f} g/cm³"
    except Exception:  # noqa: BLE001 - cosmetic
        density = None
    return {"svg": svg, "formula": structure.composition.reduced_formula, "n_sites": len(structure),
            "legend": legend, "density": density,
            "note": None if svg else f"{len(structure)} sites: cell not drawn (too many sites or degenerate cell)."}


def _structure_gallery(cif_path: Path, frame) -> dict:
    """Drawings of the first valid generated crystals (``structures``) or a note why there are none."""
    out: dict[str, Any] = {"structures": [], "structures_note": None, "structures_caption": None,
                           "structures_parse_note": None}
    from runner import safefiles

    try:
        text = safefiles.read_text(cif_path, _MAX_CIF_BYTES, root=cif_path.parent, errors="replace")
    except FileNotFoundError:
        out["structures_note"] = f"{cif_path.name} not found — no structures drawn."
        return out
    except safefiles.RefusedFile as exc:
        out["structures_note"] = f"{exc.name} {exc.reason}; not read — no structures drawn."
        return out
    except OSError as exc:
        out["structures_note"] = f"{cif_path.name} could not be read ({type(exc).__name__}: {exc}) — no structures drawn."
        return out
    blocks = _split_cif(text)
    if not blocks:
        out["structures_note"] = f"{cif_path.name} has no data_ block — no structures drawn."
        return out
    by_index = {i: b for i, b in blocks if i is not None}

    # which crystals to draw: the first valid ones per generated.csv, else the first blocks
    selection = "crystals in generated.cif (validity unknown: no usable generated.csv)"
    candidates: list[tuple[int | None, str]] = blocks
    total_valid = None
    if frame is not None and "index" in frame.columns and ("valid" in frame.columns or "returned" in frame.columns):
        mask, chosen = _valid_mask(frame)
        indices = []
        for v, keep in zip(frame["index"].tolist(), mask):
            try:
                if keep:
                    indices.append(int(v))
            except (TypeError, ValueError):
                continue
        if indices:
            total_valid = len(indices)
            candidates = [(i, by_index[i]) for i in indices if i in by_index]
            selection = f"{chosen} generated crystals"
            if not candidates:
                out["structures_note"] = (f"{cif_path.name} has no data_generated_<index> block for the "
                                          f"{chosen} crystals listed in generated.csv — no structures drawn.")
                return out
        else:
            selection = "crystals in generated.cif (none is valid according to generated.csv)"

    from pymatgen.core import Structure

    errors: list[str] = []
    for attempt, (index, block) in enumerate(candidates):
        if len(out["structures"]) >= MAX_DRAWN_STRUCTURES or attempt >= _MAX_PARSE_ATTEMPTS:
            break
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structure = Structure.from_str(block, fmt="cif")
            if len(structure) == 0:
                raise ValueError("no atoms")
            item = _structure_item(structure)
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many types for bad CIFs
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            continue
        item["index"] = index
        out["structures"].append(item)
    drawn = len(out["structures"])
    if errors:
        msg = (f"{len(errors)} block(s) of {cif_path.name} could not be parsed (first: {errors[0]})")
        if drawn == 0:
            out["structures_note"] = msg + " — no structures drawn."
            return out
        out["structures_parse_note"] = msg + "."
    if drawn:
        of = f" of {total_valid:,}" if total_valid is not None else ""
        out["structures_caption"] = (
            f"The first {drawn}{of} {selection}, parsed from {cif_path.name}: unit cell edges in grey, atoms "
            "coloured by element (Jmol colours), atoms on a cell face repeated on the opposite face.")
    return out


class GenerationSection(Section):
    task_type = "generation"
    metric_group = "Generation metrics (reference: test split)"
    metric_group_order = 2
    show_all_metrics = True
    phases = ("setup", "train", "generate")

    def figures(self, run: RunView) -> list[Figure]:
        return _generation_figures(Path(run.path), run.result, as_dict(run.result.get("metrics")))

    def details(self, run: RunView) -> None:
        run.section_data["generation"] = _generation_view(Path(run.path), run.result, run)
        run.parts_before.append("sections/generation.html.j2")
        run.parts_after.append("sections/generation_structures.html.j2")
