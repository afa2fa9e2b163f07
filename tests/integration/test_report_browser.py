"""The HTML report opened in a real headless Chromium (``pytest -m browser``).

Skipped when Chromium is not installed, except on CI (``CI=true``), where a missing browser is a
failure: install it with ``apt-get install -y chromium``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) does not add the repo root
    sys.path.insert(0, str(ROOT))

from orchestrator.report import render_report  # noqa: E402
from tests.browser import dump_dom, find_chromium, screenshot  # noqa: E402
from tests.fakes import make_fake_run  # noqa: E402

pytestmark = pytest.mark.browser

MALICIOUS = "<script>alert(1)</script>"
WIDTH, HEIGHT = 1400, 2400


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = find_chromium()
    if exe is None:
        reason = "Chromium not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; browser tests may not be skipped on CI")
        pytest.skip(reason)
    return exe


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("browser_report")
    dirs = [base / "reg_ok", base / "cls_ok", base / "reg_failed", base / "gen_ok", base / "spec_ok"]
    make_fake_run(dirs[0], task_type="regression", status="ok", display_name=MALICIOUS)
    make_fake_run(dirs[1], task_type="classification", status="ok", display_name="CGCNN classifier",
                  gpu=True, seed=1)
    make_fake_run(dirs[2], task_type="regression", status="failed", display_name="Broken Net", seed=2)
    make_fake_run(dirs[3], task_type="generation", status="ok", display_name="CDVAE generator", gpu=True, seed=3)
    make_fake_run(dirs[4], task_type="spectra", status="ok", display_name="e3nn phonon DOS", gpu=True, seed=4,
                  crystal_ids=[f"mp-{3000 + i}<i>{i}</i>" for i in range(12)])
    return render_report(dirs, base / "report.html")


def test_dom_has_table_and_sections_and_no_injected_script(chromium, report: Path) -> None:
    dom = dump_dom(report)
    assert 'id="comparison-table"' in dom
    assert len(re.findall(r'<th class="colhead"', dom)) == 5
    for i in (1, 2, 3, 4, 5):
        assert f'id="run-{i}"' in dom
    assert "Broken Net" in dom and "FAILED" in dom and "CGCNN classifier" in dom
    # 3 + 3 + 2 figures of the first three runs; the generation run: timeseries, loss, two
    # histograms and four structure drawings; the spectra run: timeseries, loss, best/median/worst
    # spectra, MSE histogram and C_V parity
    assert dom.count("<svg") == 8 + 8 + 7
    gen = dom[dom.index('id="run-4"'):dom.index('id="run-5"')]
    assert len(re.findall(r'<figure class="structure">', gen)) == 4
    assert 'class="fig-hist-density"' in gen and 'class="fig-hist-elements"' in gen
    assert re.search(r'>Validity \(structure\)</th>', dom) and re.search(r"\d+\.\d\d %", dom)
    spec = dom[dom.index('id="run-5"'):]
    for key in ("spectrum-best", "spectrum-median", "spectrum-worst", "hist-mse", "parity-cv"):
        assert f'class="fig-{key}' in spec, key
    assert "Spectrum metrics (test set)" in dom and ">Wasserstein (cm⁻¹)</th>" in dom
    # crystal ids with markup are text in the captions, never elements
    assert len(re.findall(r'<span class="crystal-id mono">mp-\d+&lt;i&gt;\d+&lt;/i&gt;</span>', spec)) == 3
    assert "<i>" not in spec
    # the malicious display name is text in the DOM, never an element
    assert MALICIOUS not in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "<script" not in dom.lower()


def test_screenshot_is_a_non_blank_png_of_the_requested_size(chromium, report: Path, tmp_path: Path) -> None:
    png = screenshot(report, tmp_path / "report.png", width=WIDTH, height=HEIGHT)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (WIDTH, HEIGHT)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow comes with matplotlib
        assert len(data) > 50_000, "screenshot suspiciously small: blank page?"
        return
    with Image.open(png) as im:
        assert im.size == (WIDTH, HEIGHT)
        rgb = im.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 200, "too few colours: blank or unstyled page"
        grey = rgb.convert("L").histogram()
        non_white = sum(grey[:240])
        assert non_white > 0.03 * WIDTH * HEIGHT, "page is (nearly) all white"
        # content reaches the lower half of the page (the run sections), not only the header
        lower = rgb.crop((0, HEIGHT // 2, WIDTH, HEIGHT))
        assert len(lower.getcolors(maxcolors=1 << 20) or []) > 50
