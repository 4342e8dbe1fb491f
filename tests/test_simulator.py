"""The defocus PSF (original project's test values) and the sensor model."""
import numpy as np
import pytest

from model.training.simulator import (apply_sensor, blur_diameter_px, defocus, defocus_psf, psf_profile)


def test_psf_values_of_the_original():
    assert psf_profile(0.0, 0.0) == pytest.approx(0.25, abs=1e-6)
    assert psf_profile(0.0, 1e-6) == pytest.approx(0.20264, abs=1e-5)


def test_kernels_are_normalised_and_cached():
    k = defocus_psf(5)
    assert k.sum() == pytest.approx(1.0) and k.shape[0] % 2 == 1
    assert defocus_psf(5) is k


def test_blur_grows_about_linearly():
    """RMS radius of the kernels grows by a near-constant step from level 2 on (~3 px diameter per level)."""
    def rms_radius(k):
        c = k.shape[0] // 2
        yy, xx = np.mgrid[-c:c + 1, -c:c + 1]
        return float(np.sqrt((k * (yy ** 2 + xx ** 2)).sum()))

    radii = np.array([rms_radius(defocus_psf(level)) for level in range(11)])
    assert np.all(np.diff(radii) > 0)
    steps = np.diff(radii[2:])
    assert steps.max() / steps.min() < 1.5
    assert blur_diameter_px(10) == pytest.approx(30.8, abs=0.1)


def test_defocus_keeps_total_intensity_and_blurs(rng):
    image = np.zeros((128, 128), np.float32)
    image[64, 64] = 1000
    blurred = defocus(image, 6)
    assert blurred.sum() == pytest.approx(1000, rel=1e-3)
    assert blurred.max() < 50


def test_sensor_noise_mean_offset_and_clipping(rng):
    flat = np.full((200, 200), 100.0)
    out = apply_sensor(flat, rng, gain=2.0, offset=50.0)
    assert out.mean() == pytest.approx(250, rel=0.01)
    assert out.var() == pytest.approx(200, rel=0.1)  # Poisson: variance = mean electrons
    assert apply_sensor(np.full((4, 4), 1e6), rng).max() == 65535
