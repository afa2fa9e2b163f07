"""tests/run_model_tests.py: a model's own tests (images/<name>/tests/) run in a given Python, with
only the repository root (and --extra-path) on PYTHONPATH, and pytest's exit status returned."""

from __future__ import annotations

import os
import sys

import pytest

from tests import run_model_tests as launcher
from tests.conftest import REPO_ROOT

CONFTEST = '''import sys
from pathlib import Path
MODEL_DIR = Path(__file__).resolve().parents[1]
if str(MODEL_DIR) not in sys.path:
    sys.path.insert(0, str(MODEL_DIR))
'''


def fake_model(images, name: str, test_body: str) -> None:
    """images/<name>/ with a package, a tests/conftest.py like the real ones, and one test file."""
    (images / name / name).mkdir(parents=True)
    (images / name / name / "__init__.py").write_text(f"NAME = {name!r}\n")
    (images / name / "tests").mkdir()
    (images / name / "tests" / "conftest.py").write_text(CONFTEST)
    (images / name / "tests" / f"test_{name}.py").write_text(test_body)


def test_every_model_with_tests_is_listed():
    assert {"matformer", "symat", "pdos"} <= set(launcher.models_with_tests())
    assert "base" not in launcher.models_with_tests()


def test_command_and_environment():
    assert launcher.command("pdos", "/env/bin/python", ["-x"]) == [
        "/env/bin/python", "-m", "pytest", "images/pdos/tests", "--import-mode=importlib", "-p", "no:cacheprovider",
        "-x"]
    env = launcher.environment(["/opt/pytest-libs"], base={"PYTHONPATH": "/host/venv/site-packages", "HOME": "/h"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(REPO_ROOT), "/opt/pytest-libs"]  # the caller's is not kept
    assert env["HOME"] == "/h"


def test_runs_the_tests_and_returns_pytests_status(tmp_path, monkeypatch, capsys):
    images = tmp_path / "images"
    # imports the model package (conftest), the repository (PYTHONPATH) and sees --extra-path
    fake_model(images, "alpha", f'''import os, sys
from pathlib import Path
import alpha
from runner.contract import ModelAdapter
from tests.conftest import REPO_ROOT

def test_ok():
    assert alpha.NAME == "alpha" and REPO_ROOT == Path({str(REPO_ROOT)!r})
    assert os.environ["PYTHONPATH"].split(os.pathsep)[1] == {str(tmp_path / "extra")!r}
''')
    fake_model(images, "beta", "def test_fails():\n    assert False\n")
    (images / "gamma").mkdir()
    (tmp_path / "extra").mkdir()
    monkeypatch.setattr(launcher, "IMAGES", images)
    assert launcher.models_with_tests() == ["alpha", "beta"]
    assert launcher.main(["alpha", "--python", sys.executable, "--extra-path", str(tmp_path / "extra"), "--", "-q"]) == 0
    assert launcher.main(["beta", "--python", sys.executable, "--", "-q"]) == 1
    assert launcher.main(["gamma"]) == 0 and "no tests" in capsys.readouterr().out
    assert launcher.main(["delta"]) == 2 and "no model folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        launcher.main([])
