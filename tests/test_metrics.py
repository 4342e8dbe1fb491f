"""Certainty and aggregation against the original project's test vectors (ORIGINAL.md §1.8)."""
import numpy as np
import pytest

from model import metrics


def test_certainty_test_vector():
    assert metrics.certainty([0, 0.2, 0.8]) == pytest.approx(0.545, abs=5e-4)


def test_certainty_extremes():
    assert metrics.certainty(np.full(11, 1 / 11)) == pytest.approx(0.0, abs=1e-12)
    assert metrics.certainty(np.eye(11)[3]) == pytest.approx(1.0)
    assert metrics.certainty(np.zeros(11)) == 0.0


def test_certainty_renormalises():
    assert metrics.certainty([0, 2, 8]) == pytest.approx(metrics.certainty([0, 0.2, 0.8]))


def test_aggregate_mixed_patches():
    p = [[1 / 3, 1 / 3, 1 / 3], [0, 0.2, 0.8]]
    np.testing.assert_allclose(metrics.aggregate(p), [0, 0.2, 0.8], atol=1e-12)
    c = metrics.image_certainties(p)
    assert c == pytest.approx({"mean": 0.272, "max": 0.545, "aggregate": 0.545, "weighted": 0.545}, abs=5e-4)


def test_aggregate_all_uniform_uses_plain_mean():
    p = [[1 / 3, 1 / 3, 1 / 3]] * 2
    np.testing.assert_allclose(metrics.aggregate(p), [1 / 3] * 3)
    assert int(np.argmax(metrics.aggregate(p))) == 0
    assert metrics.image_certainties(p) == pytest.approx(
        {"mean": 0.0, "max": 0.0, "aggregate": 0.0, "weighted": 0.0}, abs=1e-12)


def test_one_certain_patch_dominates():
    c = metrics.image_certainties([[1 / 3, 1 / 3, 1 / 3], [0, 0, 1]])
    assert c == pytest.approx({"mean": 0.5, "max": 1.0, "aggregate": 1.0, "weighted": 1.0})


def test_expected_level_and_in_focus_rule():
    assert metrics.expected_level(np.eye(11)[4]) == pytest.approx(4.0)
    assert metrics.expected_level([0.5] + [0] * 9 + [0.5]) == pytest.approx(5.0)
    half = np.zeros(11)
    half[[2, 3]] = 0.5
    assert metrics.in_focus(half)
    assert not metrics.in_focus(np.eye(11)[3])
