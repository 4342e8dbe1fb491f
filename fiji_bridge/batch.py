"""``focus-quality fiji``: image files through ImageJ, headless.

Each file is opened by ImageJ itself (``IJ.openImage``), so what is assessed is
what a Fiji user would see; every plane of stacks and hyperstacks is assessed
unless one is chosen. Per file it writes an ImageJ TIFF whose overlay ROIs
carry their planes' positions, the "Focus Quality" table as CSV, and, for more
than one plane, the through-focus profile (expected level against slice).
A file ImageJ cannot open or the model cannot assess is reported and skipped.
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path

from model.batch import CLI_MAX_VALUE_ADVICE, UniqueStems
from model.image_files import ImageFileError, check_intact
from model.scaling import ImageError, in_host_words

from ._java import jimport, start_imagej
from .command import run_focus_quality
from .table import write_csv

LOGGER = logging.getLogger(__name__)


@dataclass
class FijiOptions:
    """The command's parameters (see :func:`fiji_bridge.command.run_focus_quality`)."""

    scope: str = "stack"
    plane: int = None
    channel: int = None
    tiles_x: int = None
    tiles_y: int = None
    border: int = None
    solid: bool = False
    probability_image: bool = False
    go_to_best: bool = False
    duplicate_best: bool = False
    max_value: float = None
    model: object = None

    def command_kwargs(self):
        return dict(vars(self))


@dataclass
class FijiBatchReport:
    written: list = field(default_factory=list)
    errors: list = field(default_factory=list)


def run_files(paths, output_dir, options=None, *, fiji_dir=None, progress=None):
    """Run the command on each file; returns a :class:`FijiBatchReport` (written files, error messages)."""
    from tqdm import tqdm

    options = options or FijiOptions(scope="all")
    start_imagej(fiji_dir)
    IJ = jimport("ij.IJ")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    stems = UniqueStems()
    report = FijiBatchReport()
    for path in tqdm(paths, desc="assessing focus in ImageJ", unit="image",
                     disable=None if progress is None else not progress):
        try:
            check_intact(path)  # ImageJ's own TIFF reader hangs on some truncated files
        except ImageFileError as exc:
            report.errors.append(str(exc))
            continue
        imp = IJ.openImage(str(path))
        if imp is None:
            report.errors.append(f"{path}: ImageJ cannot open this file")
            continue
        try:
            run = run_focus_quality(imp, **options.command_kwargs())
        except ImageError as exc:
            report.errors.append(f"{path}: {in_host_words(exc, path, CLI_MAX_VALUE_ADVICE)}")
            continue
        report.written.extend(_write_outputs(run, imp, output_dir / stems(path)))
    for message in report.errors:
        LOGGER.warning("%s", message)
    return report


def _write_outputs(run, imp, stem):
    IJ = jimport("ij.IJ")
    written = []
    if len(run.planes) > 1:  # before saving: saving renames the image
        written.append(plot_focus_profile(run, imp, Path(f"{stem}.focus_profile.png")))
    written += [Path(f"{stem}.focus.tif"), Path(f"{stem}.focus.csv")]
    IJ.saveAsTiff(imp, str(written[-2]))
    write_csv(run.table_rows, written[-1])
    for image, suffix in ((run.probability_image, "probabilities.tif"), (run.best_image, "best_focus.tif")):
        if image is not None:
            written.append(Path(f"{stem}.{suffix}"))
            IJ.saveAsTiff(image, str(written[-1]))
    return written


def plot_focus_profile(run, imp, path):
    """Expected level against slice, one line per channel and frame, best planes marked."""
    from model.plotting import pyplot, save_figure

    plt = pyplot()
    series = {}
    for plane in run.planes:
        series.setdefault((plane.position.channel, plane.position.frame), []).append(plane)
    fig, ax = plt.subplots(figsize=(6, 4))
    for (channel, frame), planes in series.items():
        label = ", ".join(f"{name} {value}" for name, value, total in (
            ("channel", channel, imp.getNChannels()), ("frame", frame, imp.getNFrames())) if total > 1)
        x = [p.position.slice if imp.getNSlices() > 1 else p.position.index for p in planes]
        ax.plot(x, [p.result.expected_level for p in planes], "o-", label=label or None)
        for xi, p in zip(x, planes):
            if p.best:
                ax.plot(xi, p.result.expected_level, "*", color="k", markersize=14)
    ax.set(xlabel="slice (z)" if imp.getNSlices() > 1 else "plane", ylabel="expected level (0 = in focus)",
           ylim=(-0.3, 10.3), title=f"Through-focus profile of {imp.getTitle()} (* best plane)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    if any(ax.get_legend_handles_labels()[1]):
        ax.legend(fontsize=8)
    return save_figure(fig, path)
