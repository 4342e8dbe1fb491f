"""The differences between CellProfiler 4.2 and 5 that matter for running this plugin, in one place.

The module itself uses only API that both versions share. What differs is how
CellProfiler reads images when it runs without a GUI:

- CellProfiler 4.2 reads through Bio-Formats in its bundled Java (javabridge).
- CellProfiler 5 would fetch Bio-Formats from Maven at run time; its ImageIO
  reader needs neither Java nor a network and reads TIFF and PNG, so headless
  runs here enable only that reader (``-e imageio_reader``, kept last because
  ``-e`` takes several values).
"""
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

#: This folder: what CellProfiler's plugins directory must point at.
PLUGINS_DIRECTORY = Path(__file__).resolve().parent


def cellprofiler_major():
    """Major version of the installed cellprofiler-core (4 or 5); 0 if none is installed."""
    for distribution in ("cellprofiler-core", "cellprofiler-core-nightly"):
        try:
            return int(version(distribution).split(".")[0])
        except PackageNotFoundError:
            continue
    return 0


def headless_command(executable="cellprofiler"):
    """The headless ``cellprofiler`` command line with this plugin; pipeline, input and output go before it.

    Without ``--plugins-directory`` CellProfiler skips the unknown module and
    still exits with 0, so the plugin folder is always given.
    """
    command = [str(executable), "-c", "-r", "--plugins-directory", str(PLUGINS_DIRECTORY)]
    return command if cellprofiler_major() < 5 else command + ["-e", "imageio_reader"]
