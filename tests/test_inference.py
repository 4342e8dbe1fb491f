"""predict() with the real shipped model on real images."""
import concurrent.futures

import numpy as np
import pytest

from model import ImageError, best_plane, predict, predict_planes
from model.constants import PATCH_SIZE
from model.tiling import tile_grid

from .conftest import focal_stack


class CountingModel:
    """The real model, recording how many patches each call gets (a spy, not a stand-in)."""

    def __init__(self, model):
        self.model, self.sizes = model, []

    def predict_patches(self, patches):
        self.sizes.append(len(patches))
        return self.model.predict_patches(patches)


def test_result_fields(shipped_model, in_focus_image):
    r = predict(in_focus_image)
    assert r.grid == (6, 8) and r.patch_count == 48
    assert r.patch_probabilities.shape == (48, 11)
    np.testing.assert_allclose(r.probabilities.sum(), 1, atol=1e-6)
    assert 0 <= r.predicted_level <= 10 and r.predicted_level == int(np.argmax(r.probabilities))
    assert r.expected_level == pytest.approx(float(np.dot(np.arange(11), r.probabilities)))
    assert set(r.certainties) == {"aggregate", "mean", "max", "weighted"}
    assert all(0 <= v <= 1 for v in r.certainties.values())
    summary = r.summary()
    assert summary["patch_count"] == 48 and summary["probability_10"] == pytest.approx(r.probabilities[10])
    assert len(list(r.patch_rows())) == 48


def test_patches_go_to_the_model_in_full_batches(shipped_model, in_focus_image):
    spy = CountingModel(shipped_model)
    whole = predict(in_focus_image, model=spy)
    judged = whole.patch_count - whole.empty_patches
    assert spy.sizes == [judged]  # 48 patches fit one batch; only those with something to judge are sent
    spy = CountingModel(shipped_model)
    batched = predict(in_focus_image, model=spy, batch_size=5)
    assert judged > 5 and spy.sizes == [5] * (judged // 5) + ([judged % 5] if judged % 5 else [])
    np.testing.assert_allclose(batched.patch_probabilities, whole.patch_probabilities, atol=1e-6)


def test_patches_match_direct_model_call(shipped_model, in_focus_image):
    """Each patch gets the probabilities of that patch alone."""
    r = predict(in_focus_image)
    judged = int(np.flatnonzero(~r.patch_empty)[0])
    (row, col) = r.patch_origins[judged]
    alone = shipped_model.predict_patches((in_focus_image[None, row:row + PATCH_SIZE, col:col + PATCH_SIZE]
                                           / 65535.0).astype(np.float32))
    np.testing.assert_allclose(r.patch_probabilities[judged], alone[0], atol=1e-5)


def test_fewer_tiles(shipped_model, in_focus_image):
    r = predict(in_focus_image, n_rows=2, n_cols=3)
    assert r.patch_count == 6
    np.testing.assert_array_equal(r.patch_origins, tile_grid(in_focus_image.shape, 2, 3)[0])


def test_too_many_tiles_is_an_image_error(shipped_model, in_focus_image):
    with pytest.raises(ImageError, match="do not fit"):
        predict(in_focus_image, n_rows=7)


def test_in_focus_scores_lower_than_out_of_focus(shipped_model, in_focus_image, out_of_focus_image):
    sharp, blurred = predict(in_focus_image), predict(out_of_focus_image)
    assert sharp.predicted_level < blurred.predicted_level
    assert sharp.expected_level < blurred.expected_level


def test_scale_rule_uint16_equals_cellprofiler_float(shipped_model, in_focus_image):
    a = predict(in_focus_image)
    b = predict(in_focus_image.astype(np.float64) / 65535.0)
    np.testing.assert_allclose(a.patch_probabilities, b.patch_probabilities, atol=1e-5)


def test_empty_background_is_uncertain(shipped_model, rng):
    background = rng.poisson(300, size=(336, 336)).astype(np.uint16)
    r = predict(background)
    assert np.median(r.patch_certainties) <= 0.3


def test_best_plane_of_a_stack(shipped_model, in_focus_image):
    results, best = predict_planes(focal_stack(in_focus_image, (8, 4, 0, 5)))
    assert len(results) == 4 and best == 2
    assert best_plane(results) == 2


def test_predict_planes_needs_3d():
    with pytest.raises(ImageError, match="3-D"):
        predict_planes(np.zeros((100, 100)))


@pytest.mark.parametrize("name", ["in focus", "out of focus", "2048x2048"])
def test_batches_of_any_size_give_the_same_numbers(shipped_model, in_focus_image, out_of_focus_image, name):
    image = {"in focus": in_focus_image, "out of focus": out_of_focus_image,
             "2048x2048": np.tile(in_focus_image, (4, 3))[:2048, :2048]}[name]
    whole = predict(image, batch_size=10 ** 6)  # every patch in one call
    for batch_size in (1, 37, 256):
        result = predict(image, batch_size=batch_size)
        np.testing.assert_allclose(result.patch_probabilities, whole.patch_probabilities, atol=1e-5)  # float32
        np.testing.assert_array_equal(result.patch_empty, whole.patch_empty)
        assert result.predicted_level == whole.predicted_level


def test_threads_assessing_at_once_get_each_their_own_numbers(shipped_model, in_focus_image, out_of_focus_image):
    """Each thread reuses its own batch buffer (Dask's threads, a host's workers): none sees another's patches."""
    images = [in_focus_image, out_of_focus_image, in_focus_image[::-1], out_of_focus_image[:, ::-1]] * 2
    alone = [predict(image, batch_size=7) for image in images]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda image: predict(image, batch_size=7), images))
    for one, other in zip(alone, together):
        np.testing.assert_allclose(other.patch_probabilities, one.patch_probabilities, atol=1e-5)
