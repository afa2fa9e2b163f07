"""Removing torch's dependency closure from the images' hash-pinned locks."""

from orchestrator.locks import provided_by_base, strip_base_packages
from tests.conftest import REPO_ROOT

LOCK = """\
numpy==2.4.6 \\
    --hash=sha256:aaa
    # via pandas
nvidia-cublas==13.4.1.3 \\
    --hash=sha256:bbb
    # via torch
nvidia-ml-py==13.615.71 \\
    --hash=sha256:ccc
    # via nvitop
sympy==1.14.0 \\
    --hash=sha256:ddd
thop==0.1.1.post2209072238 \\
    --hash=sha256:eee

# The following packages are considered to be unsafe in a requirements file:
# torch
"""


def test_strip_keeps_our_packages_and_drops_torchs():
    kept = "\n".join(strip_base_packages(LOCK.splitlines()))
    assert "numpy==2.4.6" in kept and "--hash=sha256:aaa" in kept
    assert "nvidia-ml-py==13.615.71" in kept and "--hash=sha256:ccc" in kept  # nvitop needs it
    assert "thop==" in kept
    assert "nvidia-cublas" not in kept and "sha256:bbb" not in kept
    assert "sympy" not in kept and "sha256:ddd" not in kept
    assert "# torch" in kept  # comments outside blocks survive


def test_provided_by_base():
    assert provided_by_base("Typing_Extensions") and provided_by_base("cuda-bindings") and provided_by_base("torch")
    assert not provided_by_base("nvidia-ml-py") and not provided_by_base("pymatgen")


def test_committed_locks_are_stripped_and_hashed():
    for image in ("base", "matformer"):
        lines = (REPO_ROOT / "images" / image / "requirements.lock").read_text().splitlines()
        pins = [line.split("==")[0] for line in lines if "==" in line and not line.startswith((" ", "#"))]
        assert pins and not [p for p in pins if provided_by_base(p)]
        assert sum("--hash=sha256:" in line for line in lines) >= len(pins)


def test_every_image_folder_with_requirements_in_has_a_stripped_hashed_lock():
    """`make image-locks` compiles every images/<name>/requirements.in (no list to keep up to date)."""
    folders = sorted(path.parent for path in (REPO_ROOT / "images").glob("*/requirements.in"))
    assert {"base", "matformer", "symat", "pdos"} <= {folder.name for folder in folders}
    for folder in folders:
        lines = (folder / "requirements.lock").read_text().splitlines()
        pins = [line.split("==")[0] for line in lines if "==" in line and not line.startswith((" ", "#"))]
        assert not [p for p in pins if provided_by_base(p)], folder.name
        assert sum("--hash=sha256:" in line for line in lines) >= len(pins), folder.name
