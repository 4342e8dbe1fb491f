"""The Fiji command "Microscope Image Focus Quality", driven from Python.

>>> from fiji_bridge import start_imagej, run_focus_quality   # doctest: +SKIP
>>> start_imagej()                       # Fiji if FIJI_DIR is set, else ImageJ1 (ij.jar)  # doctest: +SKIP
>>> imp = jimport("ij.IJ").openImage("cells.tif")             # doctest: +SKIP
>>> run = run_focus_quality(imp)         # overlay on imp, run.table = "Focus Quality"  # doctest: +SKIP

Modules: ``_java`` (starts Java, the only one that does), ``convert``
(ImagePlus <-> NumPy), ``command`` (overlay, results table, probability image),
``menu`` (the Plugins menu entry in ImageJ's window), ``batch`` (headless runs
over files, ``focus-quality fiji``). The focus itself comes from :mod:`model`.
"""
from ._java import ImageJUnavailable, jimport, start_imagej
from .command import FocusRun, run_focus_quality

__all__ = ["start_imagej", "jimport", "run_focus_quality", "FocusRun", "ImageJUnavailable"]
