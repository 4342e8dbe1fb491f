"""``focus-quality check-simulator``: does the simulator's level 0 look like real widefield in-focus images?

1. **Level 0.** The radial power spectrum of real 20x widefield in-focus images
   (noise removed) against that of simulated level 0 made from confocal
   sources brought to the reference optics (shrunk to 20x), thin and thick.
   Each spectrum is summarised by its log-log slope over 0.03-0.25 cycles/px:
   steeper = less fine detail relative to coarse. Run on the training widefield
   sources, this calibrates
   :data:`~model.training.sources.CONFOCAL_IN_FOCUS_SIGMA`; run on held-out
   ones, it checks it.
2. **The real pair.** The real BBBC006 in-focus field, simulated 32 µm out of
   focus (thin and thick), against the real plane z00 of the same field, ~32 µm
   from focus: slopes and the spectra themselves.
"""
import json
from pathlib import Path

import numpy as np

from ..image_files import read_planes
from ..plotting import pyplot, save_figure
from .simulator import clean_signal, counts_of
from .sources import kind_of, reference_scale, reference_signal, simulate

#: Frequency band (cycles/px) of the spectral slope, where the signal dominates after noise removal.
BAND = (0.03, 0.25)
FREQUENCIES = np.geomspace(0.01, 0.45, 40)


def radial_spectrum(image):
    """Radially averaged power spectrum at :data:`FREQUENCIES` (cycles/px), Hann-windowed, sum-normalised."""
    img = np.asarray(image, dtype=np.float64)
    img = (img - img.mean()) * np.outer(np.hanning(img.shape[0]), np.hanning(img.shape[1]))
    power = np.abs(np.fft.fft2(img)) ** 2
    fy = np.fft.fftfreq(img.shape[0])[:, None]
    fx = np.fft.fftfreq(img.shape[1])[None, :]
    radius = np.hypot(fy, fx).ravel()
    edges = np.concatenate([[FREQUENCIES[0] / 1.1], np.sqrt(FREQUENCIES[:-1] * FREQUENCIES[1:]),
                            [FREQUENCIES[-1] * 1.1]])
    index = np.digitize(radius, edges) - 1
    keep = (index >= 0) & (index < len(FREQUENCIES))
    sums = np.bincount(index[keep], power.ravel()[keep], minlength=len(FREQUENCIES))
    counts = np.bincount(index[keep], minlength=len(FREQUENCIES))
    spectrum = sums / np.maximum(counts, 1)
    return spectrum / spectrum.sum()


def spectral_slope(spectrum):
    """Slope of log power against log frequency over :data:`BAND`."""
    band = (FREQUENCIES >= BAND[0]) & (FREQUENCIES <= BAND[1])
    return float(np.polyfit(np.log(FREQUENCIES[band]), np.log(spectrum[band]), 1)[0])


def _clean(path):
    return clean_signal(counts_of(read_planes(path)[0][1]))[0]


def check_simulator(widefield, confocal, pair, output, seed=0):
    """Write ``simulator_check.png`` and ``simulator_check.json`` to ``output``; return the numbers.

    Parameters
    ----------
    widefield : list of Path
        Real widefield in-focus images (e.g. 20x nuclear stains).
    confocal : list of Path
        Confocal / optical-section sources whose simulated level 0 is compared.
    pair : (Path, Path)
        A real in-focus image and the same field ~32 µm out of focus.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    real = [radial_spectrum(_clean(p)) for p in widefield]
    simulated = {variant: [] for variant in ("thin", "thick")}
    for i, path in enumerate(confocal):
        signal = reference_signal(read_planes(path)[0][1], reference_scale(path))
        for variant in simulated:
            level0 = simulate(signal, kind_of(path), variant, [0.0], seed=seed + i)[0]
            simulated[variant].append(radial_spectrum(level0))
    sharp, blurred = (_clean(p) for p in pair)
    pair_spectra = {"real in focus": radial_spectrum(sharp), "real z00 (~32 µm)": radial_spectrum(blurred)}
    for variant in ("thin", "thick"):
        pair_spectra[f"simulated 32 µm, {variant}"] = radial_spectrum(
            simulate(sharp, kind_of(pair[0]), variant, [32e-6], seed=seed)[0])

    def slopes(spectra):
        values = [spectral_slope(s) for s in spectra]
        return {"median": float(np.median(values)), "min": float(min(values)), "max": float(max(values)),
                "images": len(values)}

    numbers = {"band_cycles_per_px": BAND,
               "level_0_slopes": {"real widefield": slopes(real),
                                  **{f"simulated {v} (confocal sources)": slopes(s) for v, s in simulated.items()}},
               "pair_slopes": {name: spectral_slope(s) for name, s in pair_spectra.items()},
               "pair_spectrum_distance": {name: _distance(s, pair_spectra["real z00 (~32 µm)"])
                                          for name, s in pair_spectra.items() if name.startswith("simulated")}}
    (output / "simulator_check.json").write_text(json.dumps(numbers, indent=2) + "\n")
    _plot(real, simulated, pair_spectra, output / "simulator_check.png")
    return numbers


def _distance(a, b):
    """RMS difference of two spectra in log10 units over the band."""
    band = (FREQUENCIES >= BAND[0]) & (FREQUENCIES <= BAND[1])
    return float(np.sqrt(np.mean((np.log10(a[band]) - np.log10(b[band])) ** 2)))


def _plot(real, simulated, pair_spectra, path):
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for spectra, colour, label in ((real, "k", "real widefield 20x"), (simulated["thin"], "tab:blue", "thin level 0"),
                                   (simulated["thick"], "tab:red", "thick level 0")):
        median = np.median(spectra, axis=0)
        left.loglog(FREQUENCIES, median, color=colour, label=f"{label} (median of {len(spectra)})")
        left.fill_between(FREQUENCIES, *np.percentile(spectra, [10, 90], axis=0), color=colour, alpha=0.15)
    left.set(xlabel="spatial frequency (cycles/px)", ylabel="normalised power",
             title="Level 0: real widefield vs simulated from confocal sources")
    left.legend(fontsize=8)
    styles = {"real in focus": "k:", "real z00 (~32 µm)": "k-", "simulated 32 µm, thin": "b--",
              "simulated 32 µm, thick": "r--"}
    for name, spectrum in pair_spectra.items():
        right.loglog(FREQUENCIES, spectrum, styles[name], label=name)
    right.set(xlabel="spatial frequency (cycles/px)", title="BBBC006 field: real 32 µm defocus vs simulated")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.axvspan(*BAND, color="0.9", zorder=0)
    save_figure(fig, path)
