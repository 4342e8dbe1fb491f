"""Model loading: cached once per process, thread-safe, clear errors for missing or broken models."""
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from model import ModelError, load_model, predict
from model.predictor import DEFAULT_MODEL_DIR, PRECISION_VARIABLE, PRECISIONS, _cpu_flags, default_precision

from .conftest import IN_FOCUS


def test_shipped_model_loads_once(shipped_model):
    assert load_model() is shipped_model
    assert load_model(DEFAULT_MODEL_DIR) is shipped_model
    assert shipped_model.path == DEFAULT_MODEL_DIR


def test_concurrent_loads_share_one_instance(untrained_model_dir):
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(load_model(untrained_model_dir))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 6 and all(m is seen[0] for m in seen)


def test_missing_model_folder(tmp_path):
    with pytest.raises(ModelError, match="no SavedModel"):
        load_model(tmp_path / "nowhere")


def test_malformed_model(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(ModelError, match="not a usable SavedModel"):
        load_model(tmp_path)


def test_damaged_model_fails_checksum(untrained_model_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(untrained_model_dir, copy)
    data = next((copy / "variables").glob("variables.data*"))
    data.write_bytes(data.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelError, match="checksum"):
        load_model(copy)


def test_any_contract_model_works(untrained_model_dir, in_focus_image):
    result = predict(in_focus_image, model=untrained_model_dir)
    assert result.patch_probabilities.shape == (48, 11)
    np.testing.assert_allclose(result.patch_probabilities.sum(axis=1), 1, atol=1e-5)


def test_the_original_contract_alone_gives_the_same_numbers(tmp_path, in_focus_image):
    """A model with only `serving_default` (mosaics, as the original export) is fed mosaics: same result."""
    import keras
    import tensorflow as tf

    from model.training.architectures import build
    from model.training.export import _Serving, export_saved_model

    keras.utils.set_random_seed(3)
    net = build("lean")
    both = export_saved_model(net, tmp_path / "both")
    module = _Serving(net)
    tf.saved_model.save(module, str(tmp_path / "original"), signatures={"serving_default": module.serve})
    direct, original = load_model(both, precision="float32"), load_model(tmp_path / "original")
    assert direct._patch_fn is not None and original._patch_fn is None
    np.testing.assert_allclose(predict(in_focus_image, model=original).patch_probabilities,
                               predict(in_focus_image, model=direct).patch_probabilities, atol=1e-6)


def test_int8_arithmetic_gives_the_float32_levels(in_focus_image, out_of_focus_image):
    """The shipped model's int8 signature: same levels, probabilities close to its float32 emulation."""
    emulated, int8 = load_model(precision="float32"), load_model(precision="int8")
    assert (emulated.precision, int8.precision) == ("float32", "int8")
    for image in (in_focus_image, out_of_focus_image):
        a, b = predict(image, model=emulated), predict(image, model=int8)
        assert a.predicted_level == b.predicted_level
        np.testing.assert_allclose(a.patch_probabilities, b.patch_probabilities, atol=0.02)
        assert abs(a.expected_level - b.expected_level) < 0.01


def test_int8_falls_back_to_float32_where_onednn_is_off(in_focus_image):
    """TF_ENABLE_ONEDNN_OPTS=0 removes the int8 kernels: the model still loads and runs, in float32."""
    code = ("import tifffile; from model import load_model, predict; m = load_model(precision='int8'); "
            f"print(m.precision, predict(tifffile.imread(r'{IN_FOCUS}'), model=m).expected_level)")
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    precision, level = proc.stdout.split()
    assert precision == "float32"
    assert abs(float(level) - predict(in_focus_image, model=load_model(precision="float32")).expected_level) < 0.01


def test_bfloat16_signature_of_a_float_model_matches_float32(untrained_model_dir, in_focus_image):
    """Models trained without --quantize get a bfloat16 twin instead of an int8 signature."""
    full, half = load_model(untrained_model_dir, precision="float32"), load_model(untrained_model_dir,
                                                                                  precision="bfloat16")
    assert (full.precision, half.precision) == ("float32", "bfloat16")
    a, b = predict(in_focus_image, model=full), predict(in_focus_image, model=half)
    np.testing.assert_allclose(a.patch_probabilities, b.patch_probabilities, atol=0.01)


def test_a_model_without_int8_runs_its_best_float_signature(untrained_model_dir):
    model = load_model(untrained_model_dir, precision="int8")
    assert model.precision == ("bfloat16" if "avx512_bf16" in _cpu_flags() or "amx_bf16" in _cpu_flags()
                               else "float32")


def test_precision_choice(monkeypatch):
    monkeypatch.setenv(PRECISION_VARIABLE, "half")
    with pytest.raises(ModelError, match="unknown precision 'half'"):
        load_model()
    assert default_precision() in PRECISIONS
