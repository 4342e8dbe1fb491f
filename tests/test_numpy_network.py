"""The NumPy executor of the shipped network: its weights are the SavedModel's, its numbers TensorFlow's."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from model import ModelError, load_model, predict
from model.numpy_network import WEIGHTS_FILE, NumpyNetwork
from model.predictor import BACKEND_VARIABLE, DEFAULT_MODEL_DIR, NumpyFocusModel

from .conftest import ROOT, SAMPLES

#: Python with TensorFlow made unimportable, as in the CellProfiler app.
NO_TENSORFLOW = "import sys; sys.modules['tensorflow'] = None; "


def test_shipped_weights_are_the_saved_models(tmp_path):
    """`export-numpy-weights` on a copy of the shipped SavedModel writes exactly the shipped weights file."""
    copy = shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model", ignore=shutil.ignore_patterns(WEIGHTS_FILE))
    proc = subprocess.run([sys.executable, "-m", "model", "export-numpy-weights", str(copy)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with np.load(copy / WEIGHTS_FILE) as written, np.load(DEFAULT_MODEL_DIR / WEIGHTS_FILE) as shipped:
        assert written.files == shipped.files
        for name in shipped.files:
            np.testing.assert_array_equal(written[name], shipped[name], err_msg=name)
    assert (copy / "SHA256SUMS").read_text() == (DEFAULT_MODEL_DIR / "SHA256SUMS").read_text()


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.tif")), ids=lambda p: p.stem)
def test_numpy_gives_tensorflows_numbers_on_real_images(path):
    image = tifffile.imread(path)
    results = {precision: predict(image, model=load_model(precision=precision)) for precision in ("float32", "int8")}
    numpy_result = predict(image, model=load_model(backend="numpy"))
    for result in results.values():
        assert numpy_result.predicted_level == result.predicted_level
        assert abs(numpy_result.expected_level - result.expected_level) < 0.01
        np.testing.assert_allclose(numpy_result.patch_probabilities, result.patch_probabilities, atol=0.02)
        np.testing.assert_array_equal(numpy_result.patch_empty, result.patch_empty)


def test_the_environment_variable_chooses_the_backend(monkeypatch):
    monkeypatch.setenv(BACKEND_VARIABLE, "numpy")
    assert isinstance(load_model(), NumpyFocusModel)
    monkeypatch.setenv(BACKEND_VARIABLE, "torch")
    with pytest.raises(ModelError, match="unknown backend 'torch'"):
        load_model()


def _python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, **env})


def test_without_tensorflow_numpy_runs_by_itself():
    proc = _python(NO_TENSORFLOW + "import tifffile; from model import load_model, predict; m = load_model(); "
                   f"print(m.backend, predict(tifffile.imread(r'{SAMPLES / 'bbbc006_a01_s1_w1_z00.tif'}'), "
                   "model=m).predicted_level)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["numpy", "10"]


def test_tensorflow_asked_for_where_it_is_missing_says_so():
    proc = _python(NO_TENSORFLOW + "from model import load_model, ModelError\ntry:\n load_model()\n"
                   "except ModelError as e:\n print(e)", **{BACKEND_VARIABLE: "tensorflow"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "TensorFlow cannot be imported" in proc.stdout and f"unset {BACKEND_VARIABLE}" in proc.stdout


def test_damaged_or_missing_weights_are_model_errors(tmp_path):
    folder = shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model")
    weights = folder / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match="damaged"):
        load_model(folder, backend="numpy")
    weights.unlink()
    with pytest.raises(ModelError, match="no NumPy weights"):
        load_model(folder, backend="numpy")


def test_a_weights_file_of_another_kind_is_refused(tmp_path):
    np.savez(tmp_path / WEIGHTS_FILE, something=np.zeros(3))
    with pytest.raises(ValueError, match="not a weights file"):
        NumpyNetwork(tmp_path / WEIGHTS_FILE)
