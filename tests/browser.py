"""Debian's Chromium, headless and offline, opening a page from disk as a user's browser would."""
import os
import shutil
import subprocess
import tempfile

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=5000"]


def chromium():
    """The browser's path; a missing browser fails the run where hosts are required (CI), else skips."""
    path = shutil.which("chromium")
    if path is None:
        message = "Debian's chromium is needed for the browser tests (apt-get install chromium)"
        if os.environ.get("FOCUS_QUALITY_REQUIRE_HOSTS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def open_page(url, screenshot=None, size=(1400, 1000)):
    """``(dom, console)``: the page's DOM after its scripts ran, and what it wrote to the console.

    With ``screenshot``, a PNG of the window is saved there too (a second load, as the browser
    takes either a screenshot or the DOM in one run).
    """
    with tempfile.TemporaryDirectory() as profile:
        base = [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"]
        proc = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
        if screenshot is not None:
            subprocess.run(base + [f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True)
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console
