"""Drive a real headless Chromium from tests: screenshots and DOM dumps of local HTML files.

Each call starts a fresh browser with a throw-away profile directory, loads a ``file://`` URL
and exits; no network is needed. Install the browser with ``apt-get install -y chromium``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

TIMEOUT_S = 60
_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class ChromiumError(RuntimeError):
    """Chromium failed, timed out or produced no output."""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable, or ``None``.

    ``$CHROMIUM``, when set, is the only candidate (so a test run can pin or disable the browser);
    otherwise ``/usr/bin/chromium`` and the usual names on ``$PATH`` are tried.
    """
    override = os.environ.get("CHROMIUM")
    for name in (override,) if override else _CANDIDATES:
        path = name if os.path.isabs(name) else shutil.which(name)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _file_url(html_path: Path | str) -> str:
    path = Path(html_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such HTML file: {path}")
    return path.as_uri()


def _run(extra_args: list[str], url: str, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise ChromiumError("Chromium not found (install it with `apt-get install -y chromium` or set $CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="mateval-chromium-") as profile:
        cmd = [
            exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
            f"--user-data-dir={profile}", *extra_args, url,
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            raise ChromiumError(f"Chromium timed out after {timeout:g} s: {' '.join(cmd)}\n"
                                f"stderr:\n{stderr[-4000:]}") from None
    if proc.returncode != 0:
        raise ChromiumError(f"Chromium exited with status {proc.returncode}: {' '.join(cmd)}\n"
                            f"stderr:\n{proc.stderr[-4000:]}")
    return proc


def screenshot(html_path: Path | str, png_path: Path | str, width: int = 1400, height: int = 2400) -> Path:
    """Render ``html_path`` in headless Chromium and save a ``width`` x ``height`` PNG to ``png_path``.

    Raises:
        ChromiumError: Chromium is missing, fails, times out or writes no PNG (message has stderr).
    """
    png_path = Path(png_path).resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    if png_path.exists():
        png_path.unlink()
    proc = _run([f"--window-size={width},{height}", "--force-device-scale-factor=1",
                 f"--screenshot={png_path}"], _file_url(html_path))
    if not png_path.is_file() or png_path.stat().st_size == 0:
        raise ChromiumError(f"Chromium wrote no screenshot to {png_path}\nstderr:\n{proc.stderr[-4000:]}")
    return png_path


def dump_dom(html_path: Path | str) -> str:
    """The DOM of ``html_path`` after Chromium parsed it, serialised as HTML (``--dump-dom``).

    Raises:
        ChromiumError: Chromium is missing, fails, times out or prints nothing.
    """
    proc = _run(["--dump-dom"], _file_url(html_path))
    if not proc.stdout.strip():
        raise ChromiumError(f"Chromium printed no DOM\nstderr:\n{proc.stderr[-4000:]}")
    return proc.stdout
