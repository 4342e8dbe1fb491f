"""degrade / train / evaluate commands on a real image, and the loss and baseline they use."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from model import load_model, predict
from model.training.evaluation import (Case, binary_protocol, brightness_robustness, f_score, misses_within_one,
                                      within)
from model.training.plls import power_log_log_slope
from model.training.simulator import defocus

from .conftest import SAMPLES

HFF = SAMPLES / "hff_s17_infocus.tif"


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "model", *map(str, args)], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.fixture(scope="module")
def degraded(tmp_path_factory):
    out = tmp_path_factory.mktemp("degraded")
    run_cli("degrade", HFF, "--levels", "0", "6", "--output", out)
    return out


def test_degrade_writes_levels_as_16_bit(degraded):
    sharp = tifffile.imread(degraded / "0" / HFF.name)
    blurred = tifffile.imread(degraded / "6" / HFF.name)
    assert sharp.dtype == blurred.dtype == np.uint16 and sharp.shape == (512, 512)
    assert power_log_log_slope(blurred) < power_log_log_slope(sharp)


def test_evaluate_level_folders(degraded, tmp_path):
    run_cli("evaluate", "--levels", degraded, "--output", tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["plain_brightness"]["images"] == 2 and metrics["plain_brightness"]["within_1"] == 1.0
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000


def test_evaluate_synthetic_with_brightness_sweep(tmp_path):
    run_cli("evaluate", "--synthetic", HFF, "--output", tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    plain = metrics["plain_brightness"]
    assert plain["images"] == 11 * len(metrics["by_variant"]) and plain["within_1"] >= 0.9
    assert metrics["background_patches"]["median_certainty"] <= 0.3
    assert len(metrics["brightness"]["within_one_by_setting"]) == 8
    everything = metrics["all_brightness_settings"]
    missed = sum(m["misses"] for m in metrics["misses_within_one"].get("nuclei", {}).values())
    assert missed == round((1 - everything["within_1"]) * everything["images"])
    assert metrics["brightness"]["max_level_move"] <= 1
    assert (tmp_path / "brightness_sweep.png").stat().st_size > 1000


def test_train_writes_a_usable_model(tmp_path, in_focus_image):
    run_cli("train", HFF, "--output", tmp_path / "m", "--steps", "3", "--batch-size", "8", "--hold-out")
    result = predict(in_focus_image, model=load_model(tmp_path / "m"))
    assert result.patch_probabilities.shape == (48, 11)


def test_distillation_from_a_teacher_writes_a_usable_model(tmp_path, untrained_model_dir, in_focus_image):
    run_cli("train", HFF, "--output", tmp_path / "student", "--steps", "3", "--batch-size", "8", "--hold-out",
            "--teacher", untrained_model_dir)
    assert predict(in_focus_image, model=load_model(tmp_path / "student")).patch_probabilities.shape == (48, 11)


def test_ranked_probability_score_is_level_distance_for_one_hot():
    import tensorflow as tf

    from model.training.train import ranked_probability_score

    p = tf.one_hot([3, 7], 11)
    assert float(ranked_probability_score(p, tf.constant([5, 7]))) == pytest.approx(1.0)  # mean of |3-5|, 0
    uniform = tf.fill([1, 11], 1 / 11)
    assert float(ranked_probability_score(uniform, tf.constant([0]))) > 0


def test_plls_blur_and_degenerate_images(in_focus_image):
    counts = in_focus_image.astype(np.float32)
    assert power_log_log_slope(defocus(counts, 8)) < power_log_log_slope(counts)
    assert power_log_log_slope(np.ones((128, 128))) == 0.0


def _case(level, predicted, in_focus, plls):
    return Case("x", "source", "nuclei", "confocal", "plain", level, 1.0, 0.0, predicted,
                float(predicted), in_focus, 1.0, plls)


def test_scores():
    assert f_score([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(2 / 3)
    cases = [_case(0, 1, True, -1.5), _case(5, 8, False, -3.0)]
    assert within(cases, 0) == 0 and within(cases, 1) == 0.5 and within(cases, 3) == 1.0


def test_misses_are_counted_by_stain_source_and_level_with_nothing_to_judge_apart():
    cases = [_case(0, 2, True, -1.5), _case(0, 1, True, -1.5), _case(6, np.nan, False, 0.0),
             _case(6, 3, False, -2.0), _case(6, 6, False, -2.0)]
    assert misses_within_one(cases) == {
        "nuclei": {"source": {"misses": 3, "nothing_to_judge": 1, "by_level": {0: 1, 6: 2}}}}
    assert misses_within_one(cases[1:2]) == {}


def test_binary_protocol_tunes_plls_on_validation_only():
    rng = np.random.default_rng(0)
    cases = [_case(level, level, level <= 2, -1.5 - 0.1 * level + rng.normal(0, 0.01))
             for level in range(11) for _ in range(20)]
    result = binary_protocol(cases)
    assert result["validation_images"] == 22 and result["test_images"] == 198
    assert result["model_f_score"] == 1.0 and result["plls_f_score"] > 0.9


def test_sweep_moves_ignore_settings_with_nothing_to_judge_wherever_they_fall():
    def sweep(levels):
        return [Case("a.tif", "a", "nuclei", "widefield", "thin", 5, gain, 0.0, level, level, False, 0.5, -2.0)
                for gain, level in zip((1.0, 0.2, 5.0), levels)]

    for levels in ([5, np.nan, 7], [np.nan, 5, 7], [5, 7, np.nan]):
        result = brightness_robustness(sweep(levels))
        assert result["max_level_move"] == 2 and result["with_nothing_to_judge"] == 1
    assert brightness_robustness(sweep([np.nan] * 3))["fraction_moving_at_most_one"] == 1.0


def test_quantize8_rounds_onto_the_8_bit_grid():
    from model.training.architectures import Quantize8

    x = np.array([[-3.0, -0.004, 0.0, 0.004, 0.006, 1.234, 9.0]], np.float32)
    unsigned = Quantize8(2.55)(x).numpy()  # 255 steps of 0.01 over [0, 2.55]
    np.testing.assert_allclose(unsigned, [[0, 0, 0, 0, 0.01, 1.23, 2.55]], atol=1e-6)
    signed = Quantize8(1.27, signed=True)(x).numpy()  # 127 steps of 0.01 each side of 0
    np.testing.assert_allclose(signed, [[-1.27, 0, 0, 0, 0.01, 1.23, 1.27]], atol=1e-6)


def test_quantizing_needs_a_trained_model_to_start_from():
    from model.training.train import train

    with pytest.raises(ValueError, match="give start_from"):
        train([HFF], "unused", quantize=True)


def test_quantized_fine_tuning_writes_an_int8_model(tmp_path, untrained_model_dir, in_focus_image):
    """--quantize: the exported int8 signature computes what its float32 signature emulates."""
    from model.predictor import default_precision

    run_cli("train", HFF, "--output", tmp_path / "q", "--steps", "3", "--batch-size", "8", "--hold-out",
            "--architecture", "compact", "--start-from", untrained_model_dir, "--quantize")
    emulated, int8 = load_model(tmp_path / "q", precision="float32"), load_model(tmp_path / "q", precision="int8")
    assert emulated.precision == "float32"
    if default_precision() == "int8":  # elsewhere the comparison below still holds, whichever signature runs
        assert int8.precision == "int8"
    a, b = predict(in_focus_image, model=emulated), predict(in_focus_image, model=int8)
    logits_a, logits_b = np.log(a.patch_probabilities), np.log(b.patch_probabilities)
    difference = (logits_a - logits_a.mean(1, keepdims=True)) - (logits_b - logits_b.mean(1, keepdims=True))
    assert np.abs(difference).max() < 0.05
    assert np.abs(logits_a - logits_a.mean(1, keepdims=True)).max() > 0.05  # not uniform: the check can fail


def test_start_from_a_model_of_another_architecture_is_refused(tmp_path, untrained_model_dir):
    proc = subprocess.run([sys.executable, "-m", "model", "train", str(HFF), "--output", str(tmp_path / "x"),
                           "--steps", "1", "--hold-out", "--architecture", "lean", "--start-from",
                           str(untrained_model_dir)], capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "does not hold a lean network" in proc.stderr


def test_only_standardised_conv_stacks_go_on_the_8_bit_grid():
    from model.training.architectures import build, quantized

    with pytest.raises(ValueError, match="not paper"):
        quantized(build("paper"), [1.0] * 3)
    with pytest.raises(ValueError, match="need 7 limits"):
        quantized(build("lean"), [1.0] * 3)
