"""The ``focus-quality`` command. Heavy imports (TensorFlow) happen after parsing, so ``--help`` is instant."""
import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger("focus-quality")

EPILOG_PREDICT = """\
outputs in DIR:
  results.csv   one row per image (per plane for stacks): predicted_level (0 = in focus,
                10 = ~30 px blur), expected_level, in_focus, the four certainties, patch_count,
                probability_0..10, best_plane (stacks), annotated, error
  patches.csv   one row per 84x84 patch: position, level, certainty, probabilities
  *.focus.png   the image with a coloured border per patch (hue = level, brightness = certainty)

intensity scale: uint8 is divided by 255, other integer types are raw counts divided
by 65535, float images must already lie in [0, 1] (else give --max-value).
exit status: 0 all files assessed, 1 some files failed (see the error column), 2 usage or model error.
"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="focus-quality",
        description="Absolute focus quality of microscope images (Yang et al. 2018): a defocus level "
                    "0-10 per 84x84 patch and per image, with a certainty that is low on empty background.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("predict", help="assess image files; write results.csv, patches.csv and PNGs",
                            description="Assess the focus of image files (TIFF, PNG, JPEG; stacks "
                                        "plane by plane).", epilog=EPILOG_PREDICT,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files, folders (all images inside) or quoted glob patterns")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the results (created)")
    tiles = p.add_argument_group("tiling")
    tiles.add_argument("--tiles-y", type=int, metavar="N", help="patch rows (default: as many as fit)")
    tiles.add_argument("--tiles-x", type=int, metavar="N", help="patch columns (default: as many as fit)")
    p.add_argument("--max-value", type=float, metavar="V",
                   help="divide intensities by V instead of the default for the data type "
                        "(e.g. 65535 for float images holding raw counts)")
    p.add_argument("-m", "--model", metavar="DIR", help="a SavedModel folder (default: the shipped model)")
    p.add_argument("--no-png", action="store_true", help="skip the annotated PNGs (faster)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    scale = p.add_argument_group("scale")
    scale.add_argument("-j", "--workers", type=int, metavar="N",
                       help="worker processes, each loading the model once (default: the CPU cores)")
    scale.add_argument("--resume", action="store_true",
                       help="skip the files already in DIR/results.csv (after an interruption) and append")
    scale.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on a Dask cluster (e.g. tcp://host:8786); its workers need this package "
                            "and DIR on a shared file system")

    f = commands.add_parser("fiji", help="run the Fiji command through ImageJ: TIFFs with overlays, CSV tables",
                            description="Open each image in ImageJ (Fiji with --fiji or FIJI_DIR, else "
                                        "ImageJ1 from ij.jar), add the coloured patch overlay and write "
                                        "DIR/<name>.focus.tif (Fiji shows the overlay) and the 'Focus Quality' "
                                        "table as DIR/<name>.focus.csv. With --gui: open ImageJ's window "
                                        "with the Plugins > Microscope Image Focus Quality entry instead.")
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
                       help="also write the 11-channel probability image (NaN outside the patches)")
    fopts.add_argument("--plane", type=int, metavar="N", help="1-based plane of stacks (required for stacks)")
    fopts.add_argument("--max-value", type=float, metavar="V", help="intensity scale override, as for predict")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = commands.add_parser("summarize", help="plots from a predict results folder",
                            description="Write DIR/summary/: a histogram of levels, a certainty "
                                        "scatter plot and a montage of patches per level and certainty.")
    s.add_argument("results", metavar="DIR", help="folder written by `focus-quality predict`")

    d = commands.add_parser("degrade", help="write synthetically defocused copies of in-focus images",
                            description="Blur in-focus images to chosen defocus levels with the paper's "
                                        "PSF and add camera noise; writes DIR/<level>/<name>.tif (16-bit), "
                                        "the layout `evaluate --levels` reads.")
    d.add_argument("images", nargs="+", metavar="IMAGE", help="in-focus image files, folders or globs")
    d.add_argument("-o", "--output", required=True, metavar="DIR")
    d.add_argument("--levels", type=int, nargs="+", default=list(range(11)), metavar="L",
                   help="levels 0-10 to write (default: all)")
    d.add_argument("--pixel-size", type=float, default=0.65, metavar="UM",
                   help="pixel size of the images in micrometres (default 0.65, the paper's 20x)")
    d.add_argument("--gain", type=float, default=1.0, help="signal gain before shot noise (default 1)")
    d.add_argument("--offset", type=float, default=0.0, help="counts added as extra black level (default 0)")
    d.add_argument("--seed", type=int, default=0)

    t = commands.add_parser("train", help="train a focus model on in-focus images",
                            description="Train on random 84x84 crops of in-focus images, each defocused "
                                        "to a random level with random gain, offset and shot noise "
                                        "(ranked probability score loss, Adam); writes a SavedModel.")
    t.add_argument("images", nargs="+", metavar="IMAGE", help="in-focus image files, folders or globs")
    t.add_argument("-o", "--output", required=True, metavar="DIR", help="SavedModel folder to write")
    t.add_argument("--architecture", choices=["compact", "paper"], default="compact",
                   help="network: compact (shipped) or the paper's (default: compact)")
    t.add_argument("--steps", type=int, default=20000, help="batches to train (default 20000)")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--learning-rate", type=float, default=1e-3,
                   help="initial Adam learning rate, cosine-decayed (default 1e-3; the paper used 3e-5)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--hold-out", nargs="*", metavar="SOURCE", default=None,
                   help="sources not to train on (default: the shipped model's held-out sources; "
                        "give no names to train on everything)")

    e = commands.add_parser("evaluate", help="accuracy, F-score vs PLLS and brightness robustness",
                            description="Evaluate a model on labelled images: a confusion matrix (PNG), "
                                        "accuracy within 0/1/2 levels, the paper's binary in/out-of-focus "
                                        "F-score against PLLS with a tuned threshold, and (synthetic) the "
                                        "gain/offset sweep and the certainty of empty background patches.")
    source = e.add_mutually_exclusive_group(required=True)
    source.add_argument("--synthetic", nargs="+", metavar="IMAGE",
                        help="in-focus images to defocus to every level (use images the model never saw)")
    source.add_argument("--levels", metavar="DIR", help="folder with subfolders 0 ... 10 of labelled images")
    e.add_argument("-o", "--output", required=True, metavar="DIR")
    e.add_argument("-m", "--model", metavar="DIR", help="a SavedModel folder (default: the shipped model)")
    e.add_argument("--no-sweep", action="store_true", help="skip the gain/offset sweep (faster)")
    e.add_argument("--seed", type=int, default=0)
    return parser


def _predict(args):
    from .batch import PredictOptions, default_workers, predict_files
    from .image_files import expand_inputs

    paths = expand_inputs(args.images)
    options = PredictOptions(n_rows=args.tiles_y, n_cols=args.tiles_x, max_value=args.max_value,
                             model=args.model, annotate=not args.no_png)
    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    failed = predict_files(paths, args.output, options, progress=False if args.no_progress else None,
                           workers=workers, resume=args.resume, scheduler=args.scheduler)
    print(f"{len(paths) - failed} of {len(paths)} files assessed; results in {args.output}/results.csv")
    return 1 if failed else 0


def _fiji(args):
    from fiji_bridge.batch import FijiOptions

    from .image_files import expand_inputs

    options = FijiOptions(tiles_x=args.tiles_x, tiles_y=args.tiles_y, border=args.border, solid=args.solid,
                          probability_image=args.probabilities, plane=args.plane, max_value=args.max_value)
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


def _summarize(args):
    from .summarize import summarize

    for path in summarize(args.results):
        print(path)
    return 0


def _degrade(args):
    import tifffile

    from .image_files import expand_inputs, read_planes
    from .simulator import apply_sensor, counts_of, defocus, clean_signal

    rng = np.random.default_rng(args.seed)
    for path in expand_inputs(args.images):
        signal, base = clean_signal(counts_of(read_planes(path)[0][1]))
        for level in args.levels:
            blurred = defocus(signal, level, args.pixel_size * 1e-6)
            out = Path(args.output) / str(level) / f"{path.stem}.tif"
            out.parent.mkdir(parents=True, exist_ok=True)
            image = apply_sensor(blurred, rng, gain=args.gain, offset=base + args.offset)
            tifffile.imwrite(out, image.astype(np.uint16), compression="zlib")
        print(f"{path}: levels {', '.join(map(str, args.levels))} written to {args.output}")
    return 0


def _train(args):
    from .training import HELD_OUT_SOURCES, train

    held_out = HELD_OUT_SOURCES if args.hold_out is None else tuple(args.hold_out)
    train(args.images, args.output, architecture=args.architecture, steps=args.steps,
          batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed, held_out=held_out)
    print(f"model written to {args.output}")
    return 0


def _evaluate(args):
    from .evaluation import evaluate_folders, evaluate_synthetic, write_report
    from .image_files import expand_inputs
    from .predictor import load_model

    model = load_model(args.model)
    background = None
    if args.synthetic:
        cases, background = evaluate_synthetic(expand_inputs(args.synthetic), model, args.seed,
                                               sweep=not args.no_sweep)
    else:
        cases = evaluate_folders(args.levels, model)
    metrics = write_report(cases, args.output, background, args.seed)
    print(json.dumps(metrics, indent=2))
    return 0


COMMANDS = {"predict": _predict, "fiji": _fiji, "summarize": _summarize, "degrade": _degrade, "train": _train,
            "evaluate": _evaluate}


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s: %(message)s")
    from .predictor import ModelError

    try:
        return COMMANDS[args.command](args)
    except (ModelError, FileNotFoundError, ValueError, OSError, RuntimeError) as exc:
        LOGGER.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
