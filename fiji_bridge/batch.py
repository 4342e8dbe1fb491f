"""``focus-quality fiji``: image files through ImageJ, headless; per image an ImageJ TIFF with the overlay and a CSV.

Each file is opened by ImageJ itself (``IJ.openImage``), so what is assessed
is what a Fiji user would see. A file ImageJ cannot open or the model cannot
assess is reported and skipped; the others go on.
"""
import logging
from dataclasses import dataclass, field
from pathlib import Path

from model.batch import UniqueStems
from model.scaling import ImageError

from ._java import jimport, start_imagej
from .command import run_focus_quality

LOGGER = logging.getLogger(__name__)


@dataclass
class FijiOptions:
    """The command's parameters (see :func:`fiji_bridge.command.run_focus_quality`)."""

    tiles_x: int = None
    tiles_y: int = None
    border: int = None
    solid: bool = False
    probability_image: bool = False
    plane: int = None
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

    options = options or FijiOptions()
    start_imagej(fiji_dir)
    IJ = jimport("ij.IJ")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    stems = UniqueStems()
    report = FijiBatchReport()
    for path in tqdm(paths, desc="assessing focus in ImageJ", unit="image",
                     disable=None if progress is None else not progress):
        imp = IJ.openImage(str(path))
        if imp is None:
            report.errors.append(f"{path}: ImageJ cannot open this file")
            continue
        try:
            run = run_focus_quality(imp, **options.command_kwargs())
        except ImageError as exc:
            report.errors.append(f"{path}: {exc}")
            continue
        stem = output_dir / stems(path)
        outputs = [Path(f"{stem}.focus.tif"), Path(f"{stem}.focus.csv")]
        IJ.saveAsTiff(imp, str(outputs[0]))
        run.table.save(str(outputs[1]))
        if run.probability_image is not None:
            outputs.append(Path(f"{stem}.probabilities.tif"))
            IJ.saveAsTiff(run.probability_image, str(outputs[2]))
        report.written.extend(outputs)
    for message in report.errors:
        LOGGER.warning("%s", message)
    return report
