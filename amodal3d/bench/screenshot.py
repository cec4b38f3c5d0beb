"""Open a page in headless Chromium and save a screenshot (Debian: apt-get install chromium)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from amodal3d.core.errors import UserError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
# Without the networking switches Chromium keeps trying to reach Google's services, which a closed network refuses.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 2400, timeout: float = 120.0) -> Path:
    """Render ``page`` (an HTML file) to ``png`` at the given window size."""
    browser = find_browser()
    if browser is None:
        raise UserError("no Chromium found for the screenshot: apt-get install chromium")
    png = Path(png).resolve()
    with tempfile.TemporaryDirectory(prefix="amodal3d_chromium_") as profile:
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
               f"--screenshot={png}", Path(page).resolve().as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not png.is_file():
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return png
