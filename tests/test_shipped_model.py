"""The model shipped in the package: contract, size and the targets of its model card."""
import numpy as np
import pytest

from model import predict
from model.predictor import DEFAULT_MODEL_DIR
from model.training.simulator import apply_sensor, counts_of, clean_signal


def test_small_enough_to_ship():
    size = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.rglob("*") if p.is_file())
    assert size < 5e6


def test_serving_signature_matches_the_original_export(shipped_model, in_focus_image):
    import tensorflow as tf

    image = tf.constant(in_focus_image[:168, :252] / 65535.0, tf.float32)
    out = shipped_model._serve(input=image)
    assert out["probabilities"].shape == (6, 11)
    assert out["patches"].shape == (6, 84, 84, 1)
    np.testing.assert_allclose(out["patches"][1, :, :, 0], image[:84, 84:168])


def test_real_pair_without_any_threshold(shipped_model, in_focus_image, out_of_focus_image):
    assert predict(in_focus_image).predicted_level <= 2
    assert predict(out_of_focus_image).predicted_level >= 8


@pytest.mark.parametrize("gain, offset", [(0.2, 0), (0.5, 0), (2, 0), (5, 0), (1, 100), (1, 1000)])
def test_brightness_changes_move_at_most_one_level(shipped_model, in_focus_image, gain, offset):
    signal, black = clean_signal(counts_of(in_focus_image))
    rng = np.random.default_rng(0)
    reference = predict(apply_sensor(signal, rng, offset=black, read_noise=3).astype(np.uint16)).predicted_level
    changed = predict(apply_sensor(signal, rng, gain=gain, offset=black + offset, read_noise=3).astype(np.uint16))
    assert abs(changed.predicted_level - reference) <= 1
