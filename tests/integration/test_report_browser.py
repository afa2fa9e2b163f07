"""The HTML report opened in a real headless Chromium (``pytest -m browser``).

Skipped when Chromium is not installed, except on CI (``CI=true``), where a missing browser is a
failure: install it with ``apt-get install -y chromium``.

The DOM and screenshot tests use the command-line helpers of :mod:`tests.browser`; the tests of the
table script click and type through the DevTools protocol (:class:`DevTools`, over
``--remote-debugging-pipe``: no network port, no extra package).
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) does not add the repo root
    sys.path.insert(0, str(ROOT))

from orchestrator.report import render_report  # noqa: E402
from orchestrator.report.render import ENVIRONMENT_COLUMNS, RUNS_COLUMNS, TABLE_SCRIPT  # noqa: E402
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
    # spectra, MSE histogram and C_V parity; one accuracy-against-cost figure per task (4 tasks)
    assert dom.count("<svg") == 8 + 8 + 7 + 4
    # the report opens with those figures: after the navigation bar, before the first table
    top = dom.index('<section id="tradeoff"')
    assert top < dom.index("<table") and top < dom.index('id="models-compared"')
    assert len(re.findall(r'<figure class="tradeoff"[^>]*>\s*<svg role="img"', dom[top:dom.index("<table")])) == 4
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
    assert dom.lower().count("<script") == 1  # the report's own table script, nothing from the data
    # the script ran: a filter box above the filterable tables, sort arrows in the sortable ones
    for table in ("suite-table", "runs-table", "comparison-table", "environment-table"):
        assert f'id="{table}-filter"' in dom, table
    # one per header of the runs table and of the environment table
    assert dom.count('class="sort-arrow"') == len(RUNS_COLUMNS) + len(ENVIRONMENT_COLUMNS)
    # one page per model (all fakes are model "fake_model"), holding every run section
    assert len(re.findall(r'<section class="model-page" id="model-fake-model">', dom)) == 1
    page = dom[dom.index('id="model-fake-model"'):dom.index('id="environment"')]
    assert len(re.findall(r'<section class="run" id="run-\d">', page)) == 5


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


# ----------------------------------------------------------------------------------------------
# the table script, driven through the DevTools protocol
# ----------------------------------------------------------------------------------------------


class DevTools:
    """A headless Chromium driven over the DevTools protocol on a pipe.

    With ``--remote-debugging-pipe`` the browser reads commands from its fd 3 and writes replies
    and events to its fd 4, each a JSON message ending in a NUL byte. :meth:`open` loads a file in a
    new tab; :meth:`send` runs a command and returns its result; the events of a tab are collected
    in :attr:`events`. JavaScript dialogs (``alert``) are recorded and dismissed, so a page that
    calls ``alert`` shows up in :attr:`events` instead of blocking the test.
    """

    def __init__(self, exe: str, width: int = 1400, height: int = 1000, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.width, self.height = width, height
        self._profile = tempfile.TemporaryDirectory(prefix="mateval-devtools-")
        cmd_read, self._cmd_write = os.pipe()
        self._reply_read, reply_write = os.pipe()

        def child_fds() -> None:  # runs in the child between fork and exec: the pipe ends become fds 3 and 4
            a = fcntl.fcntl(cmd_read, fcntl.F_DUPFD_CLOEXEC, 10)
            b = fcntl.fcntl(reply_write, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe",
             f"--window-size={width},{height}", f"--user-data-dir={self._profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=child_fds, start_new_session=True)
        os.close(cmd_read)
        os.close(reply_write)
        self._messages: queue.Queue = queue.Queue()
        self._write_lock = threading.Lock()
        self._next_id = 0
        self.events: list[dict] = []
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._reply_read, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._messages.put(None)
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                self._messages.put(json.loads(raw))

    def _write(self, message: dict) -> None:
        with self._write_lock:
            os.write(self._cmd_write, json.dumps(message).encode() + b"\0")

    def _next(self, deadline: float) -> dict:
        try:
            message = self._messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError("no message from Chromium in time") from None
        if message is None:
            raise RuntimeError(f"Chromium closed the DevTools pipe (exit status {self.proc.poll()})")
        if message.get("method") == "Page.javascriptDialogOpening":
            self._next_id += 1
            self._write({"id": self._next_id, "method": "Page.handleJavaScriptDialog",
                         "params": {"accept": True}, "sessionId": message.get("sessionId")})
        return message

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Run one command (in tab ``session``) and return its result; events met meanwhile are kept."""
        self._next_id += 1
        mid = self._next_id
        message = {"id": mid, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._write(message)
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._next(deadline)
            if reply.get("id") == mid:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str, session: str) -> dict:
        """The first event ``method`` of tab ``session`` (already received or the next ones)."""
        deadline = time.monotonic() + self.timeout
        while True:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            message = self._next(deadline)
            if "method" in message:
                self.events.append(message)

    def open(self, path: Path) -> "Tab":
        """Load ``path`` in a new tab and wait for its load event."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                          "deviceScaleFactor": 1, "mobile": False}, session)
        self.send("Page.navigate", {"url": Path(path).resolve().as_uri()}, session)
        self.wait_event("Page.loadEventFired", session)
        return Tab(self, session)

    def close(self) -> None:
        """Close the browser (kill it if it does not exit) and remove its profile."""
        try:
            if self.proc.poll() is None:
                self._write({"id": self._next_id + 1, "method": "Browser.close", "params": {}})
                self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
            for fd in (self._cmd_write, self._reply_read):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._profile.cleanup()


class Tab:
    """One page of a :class:`DevTools` browser: evaluate expressions, click, type."""

    def __init__(self, browser: DevTools, session: str) -> None:
        self.browser, self.session = browser, session

    @property
    def events(self) -> list[dict]:
        """The events of this tab received so far."""
        return [e for e in self.browser.events if e.get("sessionId") == self.session]

    def js(self, expression: str):
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        reply = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                  self.session)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression!r}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) on the middle of the element ``selector``."""
        sel = json.dumps(selector)
        x, y, hit = self.js(
            f"(() => {{ const el = document.querySelector({sel}); el.scrollIntoView({{block: 'center'}});"
            " const r = el.getBoundingClientRect(); const x = r.x + r.width / 2, y = r.y + r.height / 2;"
            " const top = document.elementFromPoint(x, y);"
            " return [x, y, top !== null && (top === el || el.contains(top))]; })()")
        assert hit, f"{selector} is covered by another element"
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.browser.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                           "clickCount": 1}, self.session)

    def type(self, selector: str, text: str) -> None:
        """Click the input ``selector``, select what it holds and type ``text`` (input events fire)."""
        self.click(selector)
        self.js(f"document.querySelector({json.dumps(selector)}).select()")
        if text:
            self.browser.send("Input.insertText", {"text": text}, self.session)
        else:
            self.browser.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Backspace",
                                                         "windowsVirtualKeyCode": 8}, self.session)
            self.browser.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Backspace",
                                                         "windowsVirtualKeyCode": 8}, self.session)


@pytest.fixture(scope="module")
def devtools(chromium: str):
    browser = DevTools(chromium)
    try:
        yield browser
    finally:
        browser.close()


#: run id -> (task type, status, display name, seed, telemetry samples); durations: 300, 100, 150, 500 s
INTERACTIVE_RUNS = {
    "evil_reg": ("regression", "ok", MALICIOUS, 10, 600),
    "cgcnn_cls": ("classification", "ok", "CGCNN classifier", 2, 200),
    "broken_reg": ("regression", "failed", "Broken Net", 33, 900),
    "zeta_reg": ("regression", "ok", "Zeta Net", 1, 1000),
}


@pytest.fixture(scope="module")
def interactive_report(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("interactive_report")
    dirs = []
    for run_id, (task_type, status, name, seed, samples) in INTERACTIVE_RUNS.items():
        make_fake_run(base / run_id, task_type=task_type, status=status, display_name=name, seed=seed,
                      n_samples=samples)
        dirs.append(base / run_id)
    return render_report(dirs, base / "report.html")


def _column(tab: Tab, table: str, header: str) -> list[str]:
    """Texts of the column ``header`` of ``#table``'s body rows, in display order."""
    return tab.js(
        f"(() => {{ const t = document.getElementById({json.dumps(table)});"
        " const i = Array.from(t.tHead.rows[0].cells).findIndex("
        f"  (c) => c.firstChild && c.firstChild.textContent.trim() === {json.dumps(header)});"
        " return Array.from(t.tBodies[0].rows, (r) => r.cells[i].textContent.trim()); })()")


def _header(table: str, n: int) -> str:
    return f"#{table} thead th:nth-child({n})"


def _visible_rows(tab: Tab, table: str) -> list[str]:
    """Texts of the first cell of ``#table``'s visible body rows (group rows included)."""
    return tab.js(
        f"Array.from(document.getElementById({json.dumps(table)}).tBodies[0].rows)"
        ".filter((r) => !r.hidden && r.offsetParent !== null).map((r) => r.cells[0].textContent.trim())")


def test_clicking_a_header_sorts_the_runs(devtools: DevTools, interactive_report: Path) -> None:
    tab = devtools.open(interactive_report)
    run_ids = list(INTERACTIVE_RUNS)
    assert _column(tab, "runs-table", "Run id") == run_ids
    duration = _header("runs-table", 7)
    assert tab.js(f"document.querySelector('{duration}').firstChild.textContent") == "Duration (s)"
    # ascending by duration (100, 150, 300, 500 s), then descending
    tab.click(duration)
    assert _column(tab, "runs-table", "Run id") == ["cgcnn_cls", "broken_reg", "evil_reg", "zeta_reg"]
    assert _column(tab, "runs-table", "Duration (s)") == ["100.0", "150.0", "300.0", "500.0"]
    assert tab.js(f"document.querySelector('{duration}').getAttribute('aria-sort')") == "ascending"
    assert tab.js(f"document.querySelector('{duration} .sort-arrow').textContent") == "▲"
    tab.click(duration)
    assert _column(tab, "runs-table", "Run id") == ["zeta_reg", "evil_reg", "broken_reg", "cgcnn_cls"]
    assert tab.js(f"document.querySelector('{duration} .sort-arrow').textContent") == "▼"
    # seeds 10, 2, 33, 1 sort as numbers (1, 2, 10, 33), not as text (1, 10, 2, 33); the arrow moves
    tab.click(_header("runs-table", 5))
    assert _column(tab, "runs-table", "Seed") == ["1", "2", "10", "33"]
    assert tab.js(f"document.querySelector('{duration}').hasAttribute('aria-sort')") is False
    assert tab.js(f"document.querySelector('{duration} .sort-arrow').textContent") == ""
    # the failed run has no metric value: last in both directions
    value = _header("runs-table", 9)
    tab.click(value)
    asc = _column(tab, "runs-table", "Run id")
    tab.click(value)
    desc = _column(tab, "runs-table", "Run id")
    assert asc[-1] == desc[-1] == "broken_reg" and asc[:3] != desc[:3]
    # text columns sort by text; the environment table sorts too
    tab.click(_header("runs-table", 3))
    assert _column(tab, "runs-table", "Model") == [MALICIOUS, "Broken Net", "CGCNN classifier", "Zeta Net"]
    tab.click(_header("environment-table", 4))  # Seed
    assert _column(tab, "environment-table", "Run id") == ["zeta_reg", "cgcnn_cls", "evil_reg", "broken_reg"]
    # the run links still lead to the run sections
    assert tab.js("document.querySelector('#runs-table a').getAttribute('href')").startswith("#run-")
    assert not [e for e in tab.events if e["method"] == "Runtime.exceptionThrown"]


def test_typing_in_a_filter_hides_rows(devtools: DevTools, interactive_report: Path) -> None:
    tab = devtools.open(interactive_report)
    tab.type("#runs-table-filter", "BROKEN")  # case-insensitive
    assert _visible_rows(tab, "runs-table") == ["3"]
    assert tab.js("document.querySelector('#runs-table-filter + .filter-count').textContent") == "1 of 4 rows"
    tab.type("#runs-table-filter", "perov5_heat")
    assert _visible_rows(tab, "runs-table") == ["1", "3", "4"]
    tab.type("#runs-table-filter", "")
    assert _visible_rows(tab, "runs-table") == ["1", "2", "3", "4"]
    # the environment table filters on any cell
    tab.type("#environment-table-filter", "cuda")
    assert _visible_rows(tab, "environment-table") == []
    tab.type("#environment-table-filter", "zeta")
    assert _visible_rows(tab, "environment-table") == ["zeta_reg"]
    # the summary filters by row name; a group heading stays when one of its rows matches
    tab.type("#suite-table-filter", "roc-auc")
    assert _visible_rows(tab, "suite-table") == ["perov5_gap_positive (classification)",
                                                 "perov5_gap_positive · ROC-AUC"]
    # a match on a group heading (the task) keeps the whole group
    tab.type("#suite-table-filter", "heat_ref")
    rows = _visible_rows(tab, "suite-table")
    assert rows[0] == "perov5_heat_ref (regression, eV/atom)"
    assert {"perov5_heat_ref · MAE (eV/atom)", "perov5_heat_ref · R2", "perov5_heat_ref · MaxError (eV/atom)"} <= set(rows)
    assert all(r.startswith("perov5_heat_ref") for r in rows)  # the whole group (metrics, baselines, resources)
    group = tab.js("Array.from(document.getElementById('suite-table').tBodies[0].rows)"
                   ".map((r) => r.cells[0].textContent.trim()).filter((t) => t.startsWith('perov5_heat_ref'))")
    assert rows == group
    # the values are not searched in the summary: a number matches no row name
    tab.type("#suite-table-filter", "350")
    assert _visible_rows(tab, "suite-table") == []
    assert not [e for e in tab.events if e["method"] == "Runtime.exceptionThrown"]


def test_accuracy_against_cost_figures_are_drawn_at_the_top(devtools: DevTools, interactive_report: Path) -> None:
    tab = devtools.open(interactive_report)
    figures = tab.js(
        "Array.from(document.querySelectorAll('#tradeoff figure.tradeoff'), (f) => {"
        " const s = f.querySelector('svg'); const r = (s || f).getBoundingClientRect();"
        " return {task: f.dataset.task, top: r.top + window.scrollY, width: r.width, height: r.height,"
        "  title: s ? s.querySelector('title').textContent : null,"
        "  labels: s ? Array.from(s.querySelectorAll('text'), (t) => t.textContent) : []}; })")
    assert [f["task"] for f in figures] == ["perov5_heat_ref", "perov5_gap_positive"]
    first_table = tab.js("document.querySelector('table').getBoundingClientRect().top + window.scrollY")
    for f in figures:
        # laid out, visible and readable: wider than a thumbnail, above every table
        assert f["width"] > 300 and f["height"] > 100, f
        assert f["top"] < first_table, (f, first_table)
    heat, gap = figures
    assert heat["title"] == "perov5_heat_ref: MAE (eV/atom) (lower is better) against cost"
    assert gap["title"] == "perov5_gap_positive: ROC-AUC (higher is better) against cost"
    # one label per model and panel (time, params, FLOPs: no GPU energy in these fakes); every fake
    # is model "fake_model", so, as in the summary, one model named after its first run; the
    # malicious display name is the text of a <text> element, not markup
    assert heat["labels"].count(MALICIOUS) == 3 and gap["labels"].count(MALICIOUS) == 3
    for label in ("Training time (s)", "Parameters", "Forward FLOPs / sample"):
        assert label in heat["labels"], label
    assert "Pareto front" not in heat["labels"]  # a single model is its own front: no line, no legend
    assert not any("GPU energy" in t for t in heat["labels"])
    assert tab.js("document.querySelectorAll('#tradeoff script, #tradeoff foreignObject').length") == 0
    assert not [e for e in tab.events if e["method"] == "Runtime.exceptionThrown"]


def test_nothing_from_the_results_runs(devtools: DevTools, interactive_report: Path) -> None:
    tab = devtools.open(interactive_report)
    # only the report's own script is in the page, and it ran (it added the filter boxes)
    assert tab.js("document.scripts.length") == 1
    assert tab.js("document.scripts[0].textContent") == TABLE_SCRIPT
    assert tab.js("document.querySelectorAll('input.table-filter').length") == 4
    # the markup of the results is text: no element, no handler attribute, no dialog
    assert tab.js("document.querySelector('#report-nav .model-link').textContent") == MALICIOUS
    assert tab.js("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert tab.js("Array.from(document.querySelectorAll('*')).filter((el) =>"
                  " Array.from(el.attributes).some((a) => a.name.startsWith('on'))).length") == 0
    time.sleep(0.5)  # room for a late handler to fire
    tab.js("0")  # collect the events received meanwhile
    methods = [e["method"] for e in tab.events]
    assert "Page.javascriptDialogOpening" not in methods
    assert "Runtime.exceptionThrown" not in methods and "Runtime.consoleAPICalled" not in methods
    csp = [e for e in tab.events if e["method"] == "Log.entryAdded"
           and "Content Security Policy" in e["params"]["entry"].get("text", "")]
    assert not csp, csp  # our script was allowed, nothing else asked to run
    # control: the dialog detection works (an alert from the test itself is seen)
    tab.js("setTimeout(() => alert('control'), 0)")
    event = devtools.wait_event("Page.javascriptDialogOpening", tab.session)
    assert event["params"]["message"] == "control"
