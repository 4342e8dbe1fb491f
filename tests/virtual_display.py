"""A virtual X display (Xvfb) for the window tests, with GLX as on real Linux desktops.

Xvfb writes its display number to ``-displayfd`` only once it accepts
connections, so clients never race its start-up, and ``-noreset`` keeps it from
resetting (and refusing connections for a moment) whenever its last client
leaves; ``xvfb-run`` does neither, which makes window tests flaky.
"""
import contextlib
import os
import shutil
import subprocess
import time

SCREEN = "1600x1200x24"


def available():
    return all(shutil.which(tool) for tool in ("Xvfb", "xdotool", "import", "xdpyinfo"))


@contextlib.contextmanager
def virtual_display(screen=SCREEN, timeout=60):
    """Start Xvfb with the GLX extension; yield the environment for clients (``DISPLAY`` set)."""
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", screen, "+extension", "GLX", "-noreset",
                               "-nolisten", "tcp"], pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        number = b""
        end = time.time() + timeout
        while not number.endswith(b"\n") and time.time() < end:
            chunk = os.read(read, 16)
            if not chunk:
                break
            number += chunk
        if not number.strip():
            raise RuntimeError(f"Xvfb did not start (exit status {server.poll()})")
        yield {**os.environ, "DISPLAY": f":{number.decode().strip()}"}
    finally:
        os.close(read)
        server.terminate()
        server.wait(timeout=10)


def has_glx(env):
    """Whether the display offers GLX (the configuration in which TensorFlow used to crash the GUI)."""
    out = subprocess.run(["xdpyinfo"], env=env, capture_output=True, text=True).stdout
    return "GLX" in out
