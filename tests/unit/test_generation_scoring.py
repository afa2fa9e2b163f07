"""Tests of the generation scoring driver (runner.tasks.generation) and runner.fingerprints, on real
perov_5 and carbon_24 crystals from the shared data (CDVAE's test CSVs)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.core.periodic_table import DummySpecies

from runner import fingerprints
from runner.tasks import generation
from tests.conftest import require, shared_data_dir


def _read(dataset: str, nrows: int) -> list[Structure]:
    root = shared_data_dir()
    require(root is not None, "shared data (MATEVAL_DATA or ../shared/data) not found")
    frame = pd.read_csv(root / dataset / "test.csv", nrows=nrows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [Structure.from_str(c, fmt="cif") for c in frame["cif"]]


@pytest.fixture(scope="module")
def perov41() -> list[Structure]:
    """The first 41 rows of perov_5/test.csv (row 14, CsRbN3, is not SMACT-valid)."""
    return _read("perov_5", 41)


@pytest.fixture(scope="module")
def perov_valid(perov41) -> list[Structure]:
    """40 real perov_5 crystals: the first 41 rows without CsRbN3 (shown invalid below)."""
    assert perov41[14].composition.reduced_formula == "CsRbN3"
    return perov41[:14] + perov41[15:]


def _close_pair() -> Structure:
    return Structure(Lattice.cubic(6.0), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])  # 0.3 Å apart


def _unfingerprintable() -> Structure:
    # matminer cannot analyse a dummy species: CrystalNN raises
    return Structure(Lattice.cubic(4.0), [DummySpecies("X"), "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


# --------------------------------------------------------------------------------------------
# score()
# --------------------------------------------------------------------------------------------


def test_reference_scored_against_itself(perov_valid, tmp_path):
    metrics, details = generation.score(perov_valid, perov_valid, dataset="perov_5", cache_dir=tmp_path, n_jobs=1)
    assert list(metrics) == list(generation.METRIC_KEYS)
    assert metrics["validity_structure"] == metrics["validity_composition"] == metrics["validity"] == 1.0
    assert metrics["COV-R"] == 1.0 and metrics["COV-P"] == 1.0
    assert metrics["EMD_density"] == 0.0 and metrics["EMD_num_elements"] == 0.0
    assert metrics["success_rate"] == 1.0
    assert all(isinstance(v, float) for v in metrics.values())
    assert details["thresholds"] == {"structure": 0.2, "composition": 4.0}
    assert (details["n_requested"], details["n_returned"], details["n_valid"], details["n_reference"]) == (40, 40, 40, 40)
    assert details["fingerprint_failures"] == 0 and details["reference_fingerprint_failures"] == 0
    assert details["fingerprint_cache_hit"] is False
    assert len(details["reference_density"]) == 40 and all(isinstance(d, float) for d in details["reference_density"])
    assert details["reference_num_elements"] == [len(s.composition.elements) for s in perov_valid]
    assert set(details["definition"]) == {"validity", "coverage", "success_rate"}
    assert details["seconds"] > 0
    json.dumps(details, allow_nan=False)  # plain JSON

    # the second scoring reads the reference fingerprints from the cache, same numbers
    again, details2 = generation.score(perov_valid, perov_valid, dataset="perov_5", cache_dir=tmp_path, n_jobs=1)
    assert details2["fingerprint_cache_hit"] is True
    assert again == metrics


def test_invalid_crystals_count_for_coverage_as_in_cdvae(perov41):
    # generated = reference = the first 41 rows; CsRbN3 is compositionally invalid but, as in CDVAE's
    # GenEval.get_coverage (all generated crystals with a fingerprint), it still counts for coverage:
    # every crystal matches itself, COV-P = 41/41 and COV-R = 41/41 (40/41 if only valid ones counted)
    metrics, details = generation.score(perov41, perov41, dataset="perov_5", cache_dir=None, n_jobs=1)
    assert metrics["validity_structure"] == 1.0
    assert metrics["validity_composition"] == metrics["validity"] == pytest.approx(40 / 41)
    assert metrics["COV-P"] == 1.0 and metrics["COV-R"] == 1.0
    assert details["n_valid"] == 40 and details["n_coverage"] == 41


def test_carbon24_scored_against_itself(tmp_path):
    carbon = _read("carbon_24", 10)
    metrics, details = generation.score(carbon, carbon, dataset="carbon_24", cache_dir=tmp_path, n_jobs=1)
    assert metrics["validity"] == 1.0
    assert metrics["COV-R"] == metrics["COV-P"] == 1.0
    assert metrics["EMD_density"] == metrics["EMD_num_elements"] == 0.0
    assert details["reference_num_elements"] == [1] * 10


def test_none_and_invalid_entries_count_against_validity_and_success(perov_valid):
    ref = perov_valid[:8]
    generated = ref + [None, None, _close_pair()]  # 11 requested, 9 returned, 8 valid
    metrics, details = generation.score(generated, ref, dataset="perov_5", cache_dir=None, n_jobs=1)
    assert metrics["success_rate"] == pytest.approx(9 / 11)
    assert metrics["validity_structure"] == pytest.approx(8 / 11)
    assert metrics["validity_composition"] == pytest.approx(9 / 11)  # the close pair is NaCl
    assert metrics["validity"] == pytest.approx(8 / 11)
    assert metrics["COV-R"] == 1.0
    # the invalid close pair has a fingerprint and enters coverage, but NaCl is far from every
    # perovskite in composition: 8 precise crystals / 11 requested
    assert details["n_coverage"] == 9
    assert metrics["COV-P"] == pytest.approx(8 / 11)
    assert metrics["EMD_density"] == 0.0  # only the valid crystals enter the EMDs
    assert (details["n_requested"], details["n_returned"], details["n_valid"]) == (11, 9, 8)


def test_nothing_valid_or_returned(perov_valid):
    metrics, details = generation.score([None, _close_pair(), None], perov_valid[:3], dataset="perov_5",
                                        cache_dir=None, n_jobs=1)
    assert metrics["validity"] == 0.0 and metrics["success_rate"] == pytest.approx(1 / 3)
    assert math.isnan(metrics["EMD_density"]) and math.isnan(metrics["EMD_num_elements"])
    assert metrics["COV-R"] == 0.0 and metrics["COV-P"] == 0.0  # the close pair is compared, far from all
    assert details["n_valid"] == 0 and details["n_coverage"] == 1
    nothing, details = generation.score([None, None], perov_valid[:3], dataset="perov_5", cache_dir=None, n_jobs=1)
    for key in ("COV-R", "COV-P", "EMD_density", "EMD_num_elements"):
        assert math.isnan(nothing[key]), key
    assert details["n_coverage"] == 0


def test_fingerprint_failure_is_structurally_invalid_for_coverage(perov_valid, monkeypatch):
    ref = perov_valid[:6]
    target = ref[0]
    real = fingerprints.crystalnn_fingerprint

    def flaky(structure):
        if structure is target:
            raise ValueError("CrystalNN failed")
        return real(structure)

    monkeypatch.setattr(fingerprints, "crystalnn_fingerprint", flaky)  # serial path (n_jobs=1)
    metrics, details = generation.score(ref, ref, dataset="perov_5", cache_dir=None, n_jobs=1)
    assert details["fingerprint_failures"] == 1
    assert details["reference_fingerprint_failures"] == 1  # same object in the reference set
    assert metrics["validity"] == 1.0  # validity is not affected
    assert metrics["COV-P"] == pytest.approx(5 / 6)  # 5 precise crystals / 6 requested
    assert metrics["COV-R"] == 1.0  # over the 5 reference crystals with a fingerprint


def test_score_rejects_bad_input(perov_valid):
    with pytest.raises(ValueError, match="no coverage cutoffs"):
        generation.score(perov_valid[:2], perov_valid[:2], dataset="nope", cache_dir=None, n_jobs=1)
    with pytest.raises(ValueError, match="generated is empty"):
        generation.score([], perov_valid[:2], dataset="perov_5", cache_dir=None, n_jobs=1)
    with pytest.raises(ValueError, match=r"reference\[0\]"):
        generation.score(perov_valid[:2], [None], dataset="perov_5", cache_dir=None, n_jobs=1)


# --------------------------------------------------------------------------------------------
# fingerprints
# --------------------------------------------------------------------------------------------


def test_parallel_fingerprints_equal_serial(perov_valid):
    structures = perov_valid[:16] + [None, _unfingerprintable()]
    serial = fingerprints.compute_fingerprints(structures, n_jobs=1)
    parallel = fingerprints.compute_fingerprints(structures, n_jobs=2)
    assert serial[0].shape == (18, 61) and serial[1].shape == (18, 132)
    np.testing.assert_array_equal(parallel[0], serial[0])
    np.testing.assert_array_equal(parallel[1], serial[1])
    assert fingerprints.failed_rows(serial[0]).tolist() == [False] * 16 + [True, True]
    with pytest.raises(ValueError, match="n_jobs"):
        fingerprints.compute_fingerprints(structures, n_jobs=0)


def test_one_pool_serves_several_sets(perov_valid):
    a, b = perov_valid[:7] + [None], perov_valid[7:20]
    with fingerprints.FingerprintPool(2) as pool:
        batch_a, batch_b = pool.submit(a), pool.submit(b)  # both queued before either is collected
        executor = pool._executor
        got_a, got_b = pool.result(batch_a), pool.result(batch_b)
        assert executor is not None and pool._executor is executor  # started once, still running
        got_c = fingerprints.compute_fingerprints(a, pool=pool)
        assert pool._executor is executor
    assert pool._executor is None  # closed by the context manager
    for got, structures in ((got_a, a), (got_b, b), (got_c, a)):
        want = fingerprints.compute_fingerprints(structures, n_jobs=1)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_parallel_score_equals_serial(perov41, tmp_path):
    generated = perov41[:20] + [None, _close_pair()]
    serial = generation.score(generated, perov41, dataset="perov_5", cache_dir=None, n_jobs=1)[0]
    cold, details = generation.score(generated, perov41, dataset="perov_5", cache_dir=tmp_path, n_jobs=2)
    warm, details2 = generation.score(generated, perov41, dataset="perov_5", cache_dir=tmp_path, n_jobs=2)
    assert not details["fingerprint_cache_hit"] and details2["fingerprint_cache_hit"]
    assert json.dumps(serial) == json.dumps(cold) == json.dumps(warm)  # bit for bit (NaN included)


_UNGUARDED_SCRIPT = """
import sys
import pandas as pd
from pymatgen.core import Structure
from runner import fingerprints

frame = pd.read_csv(sys.argv[1], nrows=4)
structures = [Structure.from_str(c, fmt="cif") for c in frame["cif"]]
print("fingerprints", fingerprints.compute_fingerprints(structures, n_jobs=2)[0].shape)
"""


def test_script_without_main_guard_fails_clearly_not_hangs(tmp_path):
    """A worker that cannot start (here: it re-runs the unguarded script, which starts processes
    while bootstrapping) ends the caller with WorkerStartError, within a bound."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = shared_data_dir()
    require(root is not None, "shared data (MATEVAL_DATA or ../shared/data) not found")
    script = tmp_path / "unguarded.py"
    script.write_text(_UNGUARDED_SCRIPT)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    try:
        proc = subprocess.run([sys.executable, str(script), str(root / "perov_5" / "test.csv")], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("a script without a __main__ guard hung instead of failing")
    assert proc.returncode != 0
    assert "WorkerStartError" in proc.stderr and 'if __name__ == "__main__":' in proc.stderr
    assert "fingerprints (" not in proc.stdout
    # the same script with the guard works
    guarded = tmp_path / "guarded.py"
    body = _UNGUARDED_SCRIPT.replace("\nframe", "\ndef main():\n    frame").replace("\nstructures", "\n    structures")
    body = body.replace('\nprint("fingerprints"', '\n    print("fingerprints"')
    guarded.write_text(body + '\n\nif __name__ == "__main__":\n    main()\n')
    ok = subprocess.run([sys.executable, str(guarded), str(root / "perov_5" / "test.csv")], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "fingerprints (4, 61)" in ok.stdout


def test_reference_cache_hit_and_identical(perov_valid, tmp_path):
    ref = perov_valid[:6]
    key = fingerprints.structures_key(ref)
    s1, c1, hit1 = fingerprints.reference_fingerprints(ref, tmp_path, key, n_jobs=1)
    path = tmp_path / f"fingerprints-{key}.npz"
    assert not hit1 and path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    s2, c2, hit2 = fingerprints.reference_fingerprints(ref, tmp_path, key, n_jobs=1)
    assert hit2
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(c1, c2)
    # no cache folder: always computed
    _, _, hit3 = fingerprints.reference_fingerprints(ref, None, key, n_jobs=1)
    assert not hit3


def test_corrupted_or_stale_cache_is_recomputed(perov_valid, tmp_path):
    ref = perov_valid[:4]
    key = "abc123"
    s1, c1, _ = fingerprints.reference_fingerprints(ref, tmp_path, key, n_jobs=1)
    path = tmp_path / "fingerprints-abc123.npz"
    path.write_bytes(b"not a zip file")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        s2, c2, hit = fingerprints.reference_fingerprints(ref, tmp_path, key, n_jobs=1)
    assert not hit
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(c1, c2)
    assert fingerprints.reference_fingerprints(ref, tmp_path, key, n_jobs=1)[2]  # rewritten, valid again
    # the same key for a different number of structures does not fit: recomputed
    with pytest.warns(RuntimeWarning, match="does not match"):
        s3, _, hit = fingerprints.reference_fingerprints(ref[:3], tmp_path, key, n_jobs=1)
    assert not hit and s3.shape == (3, 61)
    with pytest.raises(ValueError, match="key"):
        fingerprints.reference_fingerprints(ref, tmp_path, "../escape", n_jobs=1)


def test_structures_key_is_a_content_hash(perov_valid):
    a = perov_valid[:3]
    assert fingerprints.structures_key(a) == fingerprints.structures_key([s.copy() for s in a])
    assert fingerprints.structures_key(a) != fingerprints.structures_key(a[::-1])
    moved = a[0].copy()
    moved.translate_sites([0], [0.001, 0, 0])
    assert fingerprints.structures_key(a) != fingerprints.structures_key([moved, *a[1:]])
    assert len(fingerprints.structures_key(a)) == 64


# --------------------------------------------------------------------------------------------
# generated.csv rows and generated.cif
# --------------------------------------------------------------------------------------------


def test_generated_rows(perov_valid):
    rows = generation.generated_rows([perov_valid[0], None, _close_pair()])
    assert list(rows) == ["index", "returned", "formula", "num_sites", "num_elements", "density", "volume",
                          "min_distance", "valid_structure", "valid_composition", "valid"]
    assert rows["index"] == [0, 1, 2]
    assert rows["returned"] == [True, False, True]
    assert rows["formula"][1] == "" and rows["density"][1] == "" and rows["min_distance"][1] == ""
    assert rows["formula"][2] == "NaCl" and rows["num_sites"][2] == 2 and rows["num_elements"][2] == 2
    assert rows["min_distance"][2] == pytest.approx(0.3)
    assert rows["volume"][2] == pytest.approx(216.0)
    assert rows["density"][0] == pytest.approx(perov_valid[0].density)
    assert rows["valid_structure"] == [True, False, False]
    assert rows["valid_composition"] == [True, False, True]
    assert rows["valid"] == [True, False, False]


def test_cif_round_trip(perov_valid, tmp_path):
    overlapping = Structure(Lattice.cubic(4.0), ["Na", "Na"], [[0, 0, 0], [0, 0, 0]])
    generated = [perov_valid[0], None, perov_valid[1], overlapping, None]
    path = tmp_path / "generated.cif"
    generation.write_cif(path, generated)
    assert [p.name for p in tmp_path.iterdir()] == ["generated.cif"]
    text = path.read_text()
    assert text.count("data_") == 3 and "data_generated_3" in text
    back = generation.read_cif(path)
    assert [i for i, _ in back] == [0, 2, 3]
    for i, s in back:
        orig = generated[i]
        np.testing.assert_allclose(s.lattice.abc, orig.lattice.abc, atol=1e-6)
        np.testing.assert_allclose(s.lattice.angles, orig.lattice.angles, atol=1e-6)
        assert [sp.symbol for sp in s.species] == [sp.symbol for sp in orig.species]
        diff = s.frac_coords - orig.frac_coords
        np.testing.assert_allclose(diff - np.round(diff), 0, atol=1e-6)
    # re-scoring from the file gives the same validity
    rescored = [None] * len(generated)
    for i, s in back:
        rescored[i] = s
    assert generation.generated_rows(rescored)["valid"] == generation.generated_rows(generated)["valid"]


def test_read_cif_rejects_foreign_blocks(tmp_path):
    path = tmp_path / "x.cif"
    path.write_text("data_something\n_cell_length_a 1\n")
    with pytest.raises(ValueError, match="data_something"):
        generation.read_cif(path)


def test_generated_output_is_strict_json(tmp_path):
    """A crystal with a NaN coordinate is refused by the model stage, naming the entry: the host
    never reads a generated_structures.json with NaN or Infinity."""
    good = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    bad = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, math.nan]])
    task_type = generation.TASK_TYPE
    with pytest.raises(ValueError, match=r"entries \[2\] hold NaN or infinite numbers"):
        task_type.write_output(tmp_path, [good, None, bad], [], None, {"num_samples": 3})
    assert not (tmp_path / task_type.output_file).exists()
    assert task_type.write_output(tmp_path, [good, None, good], [], None, {"num_samples": 3})
    text = (tmp_path / task_type.output_file).read_text()
    assert json.loads(text, parse_constant=lambda name: pytest.fail(name))[1] is None
