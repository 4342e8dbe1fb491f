"""The Fiji (pyimagej) backend: real runs need a Fiji.app, given as FIJI_DIR; none can be downloaded here."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from model import predict

from .conftest import IN_FOCUS, ROOT

FIJI_DIR = os.environ.get("FIJI_DIR")
needs_fiji = pytest.mark.skipif(
    not FIJI_DIR, reason="no Fiji installation given: set FIJI_DIR to a Fiji.app folder to run the pyimagej tests")


def focus_quality(*args):
    return subprocess.run([sys.executable, "-m", "model.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=900, cwd=ROOT)


def test_a_folder_that_is_not_fiji_is_refused_clearly(tmp_path):
    proc = focus_quality("fiji", IN_FOCUS, "-o", tmp_path / "out", "--fiji", tmp_path)
    assert proc.returncode == 2
    assert "is not a Fiji installation" in proc.stderr and "Traceback" not in proc.stderr


@needs_fiji
def test_fiji_backend_is_used_and_writes_the_overlay(tmp_path):
    import roifile

    proc = focus_quality("-v", "fiji", IN_FOCUS, "-o", tmp_path, "--fiji", FIJI_DIR, "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "started fiji" in proc.stderr
    stem = Path(IN_FOCUS).stem
    expected = predict(__import__("tifffile").imread(IN_FOCUS))
    rois = [r for r in roifile.roiread(tmp_path / f"{stem}.focus.tif") if r.name.startswith("patch ")]
    assert len(rois) == expected.patch_count
    with open(tmp_path / f"{stem}.focus.csv", newline="") as fd:
        assert int(float(list(csv.DictReader(fd))[-1]["Level"])) == expected.predicted_level
