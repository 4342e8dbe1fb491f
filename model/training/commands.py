"""The training-side commands of ``focus-quality``: ``degrade``, ``train``, ``evaluate``, ``check-simulator``,
``export-numpy-weights``."""
import json
from pathlib import Path

SIMULATORS = {"thin": ("thin",), "thick": ("thick",), "both": ("thin", "thick")}


def add_commands(commands):
    """Add the training subcommands to the ``focus-quality`` subparsers ``commands``."""
    d = commands.add_parser("degrade", help="write synthetically defocused copies of in-focus images",
                            description="Blur in-focus images to chosen defocus levels with the paper's "
                                        "PSF (thin or thick sample) and add camera noise; writes "
                                        "DIR/<level>/<name>.tif (16-bit), the layout `evaluate --levels` reads.")
    d.set_defaults(run=_degrade)
    d.add_argument("images", nargs="+", metavar="IMAGE", help="in-focus image files, folders or globs")
    d.add_argument("-o", "--output", required=True, metavar="DIR")
    d.add_argument("--levels", type=int, nargs="+", default=list(range(11)), metavar="L",
                   help="levels 0-10 to write (default: all)")
    d.add_argument("--simulator", choices=["thin", "thick"], default="thin",
                   help="thin sample (the paper's) or thick sample with out-of-focus light (default: thin)")
    d.add_argument("--gain", type=float, default=1.0, help="signal gain before shot noise (default 1)")
    d.add_argument("--offset", type=float, default=0.0, help="counts added as extra black level (default 0)")
    d.add_argument("--seed", type=int, default=0)

    t = commands.add_parser("train", help="train a focus model on in-focus images",
                            description="Train on random 84x84 crops of in-focus images, each defocused "
                                        "to a random level (thin or thick sample) with random gain, offset "
                                        "and camera noise (ranked probability score loss, Adam); writes a "
                                        "SavedModel.")
    t.set_defaults(run=_train)
    t.add_argument("images", nargs="+", metavar="IMAGE", help="in-focus image files, folders or globs")
    t.add_argument("-o", "--output", required=True, metavar="DIR", help="SavedModel folder to write")
    t.add_argument("--architecture", choices=["lean", "compact", "paper"], default="compact",
                   help="network: compact (v1, and v2.5 on the 8-bit grid), lean (v2-v2.4) or the paper's "
                        "(default: compact)")
    t.add_argument("--steps", type=int, default=30000,
                   help="batches to train (default 30000; the 8-bit fine-tuning of v2.5 used 6000)")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--learning-rate", type=float, default=1e-3,
                   help="initial Adam learning rate, cosine-decayed (default 1e-3; the paper used 3e-5)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--hold-out", nargs="*", metavar="SOURCE", default=None,
                   help="sources not to train on (default: the shipped model's held-out sources; "
                        "give no names to train on everything)")
    t.add_argument("--cache", metavar="DIR", help="keep the prepared (blurred) sources here for later runs")
    t.add_argument("--teacher", metavar="MODEL", help="distil from this SavedModel (a larger network trained first)")
    t.add_argument("--start-from", metavar="MODEL", help="continue from this SavedModel's weights (same architecture)")
    t.add_argument("--quantize", action="store_true",
                   help="fine-tune --start-from on the 8-bit grid: the model gets an int8 signature (VNNI CPUs)")
    t.add_argument("--teacher-weight", type=float, default=0.7,
                   help="share of the loss taken against the teacher's distributions (default 0.7)")

    e = commands.add_parser("evaluate", help="accuracy by stain, F-score vs PLLS, robustness checks",
                            description="Evaluate a model on labelled images: confusion matrix (PNG), "
                                        "accuracy by stain, source and simulator, the paper's binary "
                                        "in/out-of-focus F-score against PLLS with a tuned threshold, and "
                                        "(synthetic) the gain/offset sweep, zero-filled margins, constant "
                                        "images and the certainty of empty background patches.")
    e.set_defaults(run=_evaluate)
    source = e.add_mutually_exclusive_group(required=True)
    source.add_argument("--synthetic", nargs="+", metavar="IMAGE",
                        help="in-focus images to defocus to every level (use images the model never saw)")
    source.add_argument("--levels", metavar="DIR", help="folder with subfolders 0 ... 10 of labelled images")
    e.add_argument("-o", "--output", required=True, metavar="DIR")
    e.add_argument("-m", "--model", metavar="DIR", help="a SavedModel folder (default: the shipped model)")
    e.add_argument("--simulator", choices=list(SIMULATORS), default="both",
                   help="sample model of --synthetic (default: both, reported apart and together)")
    e.add_argument("--no-sweep", action="store_true", help="skip the gain/offset sweep (faster)")
    e.add_argument("--seed", type=int, default=0)

    c = commands.add_parser("check-simulator", help="compare simulated level 0 with real widefield images",
                            description="Radial power spectra of real widefield in-focus images against "
                                        "simulated level 0 (thin and thick) from confocal sources, and of a "
                                        "real image ~32 um out of focus against its in-focus field defocused "
                                        "by the simulator; writes a PNG and a JSON.")
    c.set_defaults(run=_check_simulator)
    c.add_argument("--widefield", nargs="+", required=True, metavar="IMAGE",
                   help="real widefield in-focus images")
    c.add_argument("--confocal", nargs="+", required=True, metavar="IMAGE",
                   help="confocal or optical-section in-focus sources")
    c.add_argument("--pair", nargs=2, required=True, metavar=("IN_FOCUS", "OUT_OF_FOCUS"),
                   help="one field in focus and ~32 um out of focus")
    c.add_argument("-o", "--output", required=True, metavar="DIR")

    x = commands.add_parser("export-numpy-weights", help="write a model's weights for the NumPy executor",
                            description="Read the weights of an 8-bit-grid SavedModel (such as the shipped "
                                        "one) into MODEL/numpy_weights.npz, which runs without TensorFlow "
                                        "(FOCUS_QUALITY_BACKEND=numpy), check both give the same "
                                        "probabilities, and update MODEL/SHA256SUMS. `train --quantize` "
                                        "does this itself.")
    x.set_defaults(run=_export_numpy_weights)
    x.add_argument("model", metavar="MODEL", help="SavedModel folder")


def _export_numpy_weights(args):
    from ..predictor import write_checksums
    from .export import write_numpy_weights

    target = write_numpy_weights(args.model)
    write_checksums(args.model)
    print(f"NumPy weights written to {target}")
    return 0


def _degrade(args):
    import numpy as np
    import tifffile

    from ..image_files import expand_inputs, read_planes
    from .simulator import apply_sensor, clean_signal, counts_of
    from .sources import kind_of, level_planes, simulate

    rng = np.random.default_rng(args.seed)
    for path in expand_inputs(args.images):
        signal, base = clean_signal(counts_of(read_planes(path)[0][1]))
        blurred = simulate(signal, kind_of(path), args.simulator, level_planes(args.levels), seed=args.seed)
        for level, image in zip(args.levels, blurred):
            out = Path(args.output) / str(level) / f"{path.stem}.tif"
            out.parent.mkdir(parents=True, exist_ok=True)
            noisy = apply_sensor(image, rng, gain=args.gain, offset=base + args.offset)
            tifffile.imwrite(out, noisy.astype(np.uint16), compression="zlib")
        print(f"{path}: levels {', '.join(map(str, args.levels))} written to {args.output}")
    return 0


def _train(args):
    from .sources import HELD_OUT_SOURCES
    from .train import train

    held_out = HELD_OUT_SOURCES if args.hold_out is None else tuple(args.hold_out)
    train(args.images, args.output, architecture=args.architecture, steps=args.steps,
          batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed, held_out=held_out,
          cache=args.cache, teacher=args.teacher, teacher_weight=args.teacher_weight,
          start_from=args.start_from, quantize=args.quantize)
    print(f"model written to {args.output}")
    return 0


def _evaluate(args):
    from ..image_files import expand_inputs
    from ..predictor import load_model
    from .evaluation import constant_certainties, evaluate_folders, evaluate_synthetic, write_report

    model = load_model(args.model)
    background = margins = constants = None
    if args.synthetic:
        cases, background, margins = evaluate_synthetic(expand_inputs(args.synthetic), model, args.seed,
                                                        sweep=not args.no_sweep,
                                                        variants=SIMULATORS[args.simulator])
        constants = constant_certainties(model)
    else:
        cases = evaluate_folders(args.levels, model)
    metrics = write_report(cases, args.output, background, margins, constants)
    print(json.dumps(metrics, indent=2))
    return 0


def _check_simulator(args):
    from ..image_files import expand_inputs
    from .simulator_check import check_simulator

    numbers = check_simulator(expand_inputs(args.widefield), expand_inputs(args.confocal),
                              tuple(Path(p) for p in args.pair), args.output)
    print(json.dumps(numbers, indent=2))
    return 0
