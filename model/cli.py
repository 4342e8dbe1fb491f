"""The ``focus-quality`` command. Heavy imports (TensorFlow) happen after parsing, so ``--help`` is instant."""
import argparse
import logging
import sys

from .constants import DEFAULT_TIME_LIMIT

LOGGER = logging.getLogger("focus-quality")

EPILOG_PREDICT = """\
outputs in DIR:
  results.csv   one row per plane: plane, series, channel, z, t, predicted_level (0 = in focus,
                10 = ~30 px blur), expected_level, in_focus, the four certainties, patch_count,
                empty_patches, probability_0..10, best_plane (per series, channel and time
                point of stacks), annotated, error
  patches.csv   one row per 84x84 patch: position, level, certainty, empty, probabilities
  *.focus.png   the image with a coloured border per patch (hue = level, brightness = certainty)

formats: TIFF (ImageJ hyperstacks, OME-TIFF: axes read from the file), PNG, JPEG; with
extras ND2 [nd2], CZI [czi], LIF [lif], OME-Zarr [ome-zarr]. Planes are read band by band,
so images of any size fit in memory.

intensity scale: uint8 is divided by 255, other integer types are raw counts divided
by 65535, float images must already lie in [0, 1] (else give --max-value).
exit status: 0 all files assessed, 1 some files failed (see the error column), 2 usage or model error,
130 interrupted (Ctrl-C; --resume continues).
"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="focus-quality",
        description="Absolute focus quality of microscope images (Yang et al. 2018): a defocus level "
                    "0-10 per 84x84 patch and per image, with a certainty that is low on empty background.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log more detail, TensorFlow's own start-up messages included")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("predict", help="assess image files; write results.csv, patches.csv and PNGs",
                            description="Assess the focus of image files, every plane of stacks and "
                                        "hyperstacks.", epilog=EPILOG_PREDICT,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(run=_predict)
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files, folders (all images inside) or quoted glob patterns")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the results (created)")
    tiles = p.add_argument_group("tiling")
    tiles.add_argument("--tiles-y", type=int, metavar="N", help="patch rows (default: as many as fit)")
    tiles.add_argument("--tiles-x", type=int, metavar="N", help="patch columns (default: as many as fit)")
    planes = p.add_argument_group("planes (0-based; files without the axis ignore the option)")
    planes.add_argument("--channel", type=int, metavar="C", help="assess only this channel")
    planes.add_argument("--z", type=int, metavar="Z", help="assess only this focal plane")
    planes.add_argument("--t", type=int, metavar="T", help="assess only this time point")
    planes.add_argument("--series", type=int, metavar="S", help="assess only this series (LIF, ND2 positions)")
    planes.add_argument("--axes", metavar="AXES",
                        help="axes of files that do not label them, e.g. CZYX (C channel, Z focus, T time, "
                             "S series; last two YX)")
    p.add_argument("--max-value", type=float, metavar="V",
                   help="divide intensities by V instead of the default for the data type "
                        "(e.g. 65535 for float images holding raw counts)")
    p.add_argument("-m", "--model", metavar="DIR", help="a SavedModel folder (default: the shipped model)")
    p.add_argument("--no-png", action="store_true", help="skip the annotated PNGs (faster)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    scale = p.add_argument_group("scale")
    scale.add_argument("-j", "--workers", type=int, metavar="N",
                       help="worker processes, each loading the model once (default: the CPU cores)")
    scale.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT, metavar="SECONDS",
                       help="with worker processes: a file still being read after this long is skipped with an "
                            f"error row and its worker replaced, as is a worker that crashes (default {DEFAULT_TIME_LIMIT})")
    scale.add_argument("--resume", action="store_true",
                       help="skip the files already in DIR/results.csv (after an interruption) and append")
    scale.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on a Dask cluster (e.g. tcp://host:8786); its workers need this package "
                            "and DIR on a shared file system")

    f = commands.add_parser("fiji", help="run the Fiji command through ImageJ: TIFFs with overlays, CSV tables",
                            description="Open each image in ImageJ (Fiji with --fiji or FIJI_DIR, else "
                                        "ImageJ1 from ij.jar), assess every plane of stacks and hyperstacks, add "
                                        "the coloured patch overlay (each ROI bound to its plane) and write "
                                        "DIR/<name>.focus.tif (Fiji shows the overlay), the 'Focus Quality' "
                                        "table as DIR/<name>.focus.csv and, for stacks, the through-focus plot "
                                        "DIR/<name>.focus_profile.png. With --gui: open ImageJ's window with the "
                                        "Plugins > Microscope Image Focus Quality entry instead (its dialog "
                                        "starts at these options).")
    f.set_defaults(run=_fiji)
    f.add_argument("images", nargs="*", metavar="IMAGE", help="image files, folders or quoted glob patterns")
    f.add_argument("-o", "--output", metavar="DIR", help="folder for the results (required without --gui)")
    f.add_argument("--gui", action="store_true", help="open ImageJ's window with the menu entry (needs a display)")
    f.add_argument("--fiji", metavar="DIR", help="a Fiji.app folder (default: $FIJI_DIR, else ImageJ1)")
    fopts = f.add_argument_group("command options")
    fopts.add_argument("--tiles-x", type=int, metavar="N", help="patch columns (default: as many as fit)")
    fopts.add_argument("--tiles-y", type=int, metavar="N", help="patch rows (default: as many as fit)")
    fopts.add_argument("--border", type=int, metavar="PX", help="outline width (default: grows with the image)")
    fopts.add_argument("--solid", action="store_true", help="fill the patches instead of outlining them")
    fopts.add_argument("--probabilities", action="store_true",
                       help="also write the probability image: a hyperstack with the 11 levels as channels and "
                            "the assessed planes as slices (NaN outside the patches)")
    fopts.add_argument("--plane", type=int, metavar="N", help="assess only this plane (1-based stack index)")
    fopts.add_argument("--channel", type=int, metavar="C",
                       help="assess every plane of this channel only (1-based; default: every channel)")
    fopts.add_argument("--duplicate-best", action="store_true",
                       help="also write DIR/<name>.best_focus.tif: the sharpest plane of each frame")
    fopts.add_argument("--current-plane", action="store_true",
                       help="with --gui: start the dialog at 'current plane' instead of every plane of the channel")
    fopts.add_argument("--go-to-best", action="store_true", help="with --gui: start with 'go to the best plane' on")
    fopts.add_argument("--max-value", type=float, metavar="V", help="intensity scale override, as for predict")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")

    i = commands.add_parser("install-fiji", help="add Plugins > Microscope Image Focus Quality to a Fiji or ImageJ",
                            description="Add the Fiji command to a Fiji.app or ImageJ folder, for Fiji started "
                                        "from its own launcher: at its next start, Plugins > Microscope Image "
                                        "Focus Quality assesses the current image with this Python "
                                        "environment's model (kept loaded until Fiji ends), and macros can call "
                                        "run(\"Microscope Image Focus Quality\", \"...\"). Run it again after "
                                        "moving this environment.")
    i.set_defaults(run=_install_fiji)
    i.add_argument("folder", metavar="DIR", help="the Fiji.app or ImageJ folder (its plugins/ folder gets the command)")
    i.add_argument("--uninstall", action="store_true", help="remove the command this command added")

    r = commands.add_parser("report", help="plate maps of a screen: report.html, wells.csv, out_of_focus.txt",
                            description="Which plates and wells lost focus: from a `predict` output folder "
                                        "(or its results.csv), or a CellProfiler Image.csv exported from the "
                                        "MeasureImageFocus pipeline. Wells and sites come from CellProfiler's "
                                        "Metadata_Plate/Well/Site columns or from file names (ImageXpress, "
                                        "Opera/Operetta Phenix, Yokogawa CellVoyager, or --pattern); a pattern "
                                        "without a plate group takes the folder's name.")
    r.set_defaults(run=_report)
    r.add_argument("results", metavar="RESULTS", help="predict output folder, results.csv or Image.csv")
    r.add_argument("-o", "--output", metavar="DIR", help="where to write (default: beside RESULTS)")
    r.add_argument("--pattern", metavar="REGEX",
                   help="file-name pattern with named groups well (or row and column), and optionally plate, "
                        "site, channel, e.g. '(?P<plate>P\\d+)_(?P<well>[A-P]\\d\\d)_f(?P<site>\\d+)'")
    r.add_argument("--worst", type=int, default=24, metavar="N", help="thumbnails of the N least sharp images")

    c = commands.add_parser("cellprofiler-plugin", help="write the CellProfiler plugins folder (or .zip) for the app",
                            description="Write MeasureImageFocus with the part of this package it needs and "
                                        "the model's NumPy weights into a CellProfiler plugins folder: it runs "
                                        "in the CellProfiler app, which has no TensorFlow and where nothing can "
                                        "be pip-installed. Other plugins in the folder are kept. A path ending "
                                        "in .zip gets the folder as a zip, as `make cellprofiler-plugin` builds.")
    c.set_defaults(run=_cellprofiler_plugin)
    c.add_argument("folder", metavar="DIR", help="CellProfiler plugins folder to write into (created), or a .zip")

    s = commands.add_parser("summarize", help="plots from a predict results folder",
                            description="Write DIR/summary/: a histogram of levels, a certainty "
                                        "scatter plot and a montage of patches per level and certainty.")
    s.set_defaults(run=_summarize)
    s.add_argument("results", metavar="DIR", help="folder written by `focus-quality predict`")

    from .training.commands import add_commands as add_training_commands

    add_training_commands(commands)
    return parser


def _predict(args):
    from .batch import PredictOptions, default_workers, predict_files
    from .image_files import expand_inputs

    paths = expand_inputs(args.images)
    options = PredictOptions(n_rows=args.tiles_y, n_cols=args.tiles_x, max_value=args.max_value,
                             model=args.model, annotate=not args.no_png, channel=args.channel, z=args.z,
                             t=args.t, series=args.series, axes=args.axes)
    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    failed = predict_files(paths, args.output, options, progress=False if args.no_progress else None,
                           workers=workers, resume=args.resume, scheduler=args.scheduler,
                           time_limit=args.time_limit)
    print(f"{len(paths) - failed} of {len(paths)} files assessed; results in {args.output}/results.csv "
          f"(plate maps of a screen: focus-quality report {args.output})")
    return 1 if failed else 0


def _fiji(args):
    from fiji_bridge.batch import FijiOptions

    from .image_files import expand_inputs

    scope = "plane" if args.current_plane else "stack" if (args.gui or args.channel) else "all"
    options = FijiOptions(scope=scope, plane=args.plane, channel=args.channel, tiles_x=args.tiles_x,
                          tiles_y=args.tiles_y, border=args.border, solid=args.solid,
                          probability_image=args.probabilities, go_to_best=args.go_to_best,
                          duplicate_best=args.duplicate_best, max_value=args.max_value)
    if args.gui:
        from fiji_bridge.menu import start_gui, wait_until_closed

        start_gui(expand_inputs(args.images) if args.images else (), options, fiji_dir=args.fiji)
        wait_until_closed()
        return 0
    if not args.output or not args.images:
        raise ValueError("`focus-quality fiji` needs IMAGE... and --output DIR (or --gui)")
    from fiji_bridge.batch import run_files

    paths = expand_inputs(args.images)
    report = run_files(paths, args.output, options, fiji_dir=args.fiji,
                       progress=False if args.no_progress else None)
    print(f"{len(paths) - len(report.errors)} of {len(paths)} files assessed; TIFFs and tables in {args.output}")
    return 1 if report.errors else 0


def _install_fiji(args):
    from fiji_bridge.install import install, uninstall

    if args.uninstall:
        removed = uninstall(args.folder)
        print(f"removed {removed}" if removed else f"nothing to remove: the command is not installed in {args.folder}")
        return 0
    path = install(args.folder, sys.executable)
    print(f"wrote {path}: restart Fiji, then use Plugins > Microscope Image Focus Quality on an image "
          "(or the Macro Recorder to script it)")
    return 0


def _report(args):
    from .screen_report import write_report

    screen, written = write_report(args.results, args.output, pattern=args.pattern, worst=args.worst)
    for plate in screen.plates:
        lost = ", ".join(w.name for w in plate.lost_wells) or "none"
        print(f"plate {plate.plate}" + (f" channel {plate.channel}" if plate.channel else "")
              + f": wells out of focus: {lost}")
    counts = screen.counts()
    print(f"{counts['out of focus']} of {counts['images']} images to re-image; "
          f"{counts['names matching no pattern']} names matched no plate pattern")
    print(f"open {written[0]}")
    return 0


def _cellprofiler_plugin(args):
    from cellprofiler_plugin.folder import write_plugin_folder, write_plugin_zip

    if args.folder.lower().endswith(".zip"):
        print(f"{write_plugin_zip(args.folder)}: unzip it, then in CellProfiler choose its folder in "
              "File > Preferences > CellProfiler plugins directory and restart CellProfiler")
    else:
        write_plugin_folder(args.folder)
        print(f"MeasureImageFocus written to {args.folder}: choose this folder in CellProfiler's "
              "File > Preferences > CellProfiler plugins directory and restart CellProfiler")
    return 0


def _summarize(args):
    from .summarize import summarize

    for path in summarize(args.results):
        print(path)
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s: %(message)s")
    from .predictor import ModelError

    try:
        return args.run(args)
    except (ModelError, FileNotFoundError, ValueError, OSError, RuntimeError) as exc:
        LOGGER.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        hint = " (`predict --resume` continues where it stopped)" if args.command == "predict" else ""
        LOGGER.error("interrupted%s", hint)
        return 130


if __name__ == "__main__":
    sys.exit(main())
