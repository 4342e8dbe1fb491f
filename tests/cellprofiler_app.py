"""An environment shaped like the CellProfiler app: CellProfiler and its own dependencies, no TensorFlow,
not this package (``make install-cp4-app``); its Python is ``$FOCUS_QUALITY_APP_PYTHON``.

The tests run in this package's venv and start CellProfiler in that environment, from a folder
that does not hold ``model/`` (the working directory is on ``sys.path``), with the plugins folder
that ``focus-quality cellprofiler-plugin`` writes: what a user of the app unzips.
"""
import functools
import os
import subprocess

APP_PYTHON = os.environ.get("FOCUS_QUALITY_APP_PYTHON") or None


def run_app_python(code, cwd, timeout=300):
    return subprocess.run([APP_PYTHON, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=timeout)


@functools.lru_cache(maxsize=None)
def app_cellprofiler_major():
    code = ("from importlib.metadata import version, PackageNotFoundError\n"
            "for d in ('cellprofiler-core', 'cellprofiler-core-nightly'):\n"
            " try: print(version(d).split('.')[0]); break\n except PackageNotFoundError: pass")
    return int(run_app_python(code, cwd="/").stdout.split()[0])
