"""Coverage-guided fuzzing of the reading layer with atheris (outside the test suite: it runs for minutes).

    pip install atheris
    python tests/fuzz_readers.py -max_total_time=600 -rss_limit_mb=3000 fuzz-corpus/

Each input is a file of one of the supported formats (its first byte picks the suffix), seeded with
small real files of every format (written into the corpus folder on the first run). The property:
opening it and reading every pixel of its first planes either works or raises
:class:`model.image_files.ImageFileError` / :class:`model.scaling.ImageError`, the errors that become
one error row; anything else, a crash, a hang or memory beyond the limit is a finding.
"""
import sys
import tempfile
from pathlib import Path

import atheris
import numpy as np

with atheris.instrument_imports():
    from model.image_files import ImageFileError, open_planes
    from model.scaling import ImageError, check_plane

SUFFIXES = (".tif", ".png", ".jpg", ".nd2", ".czi", ".lif")
SCRATCH = Path(tempfile.mkdtemp(prefix="fuzz-readers-"))


def one_input(data):
    if len(data) < 2:
        return
    path = SCRATCH / f"input{SUFFIXES[data[0] % len(SUFFIXES)]}"
    path.write_bytes(data[1:])
    try:
        with open_planes(path) as planes:
            for plane in planes[:2]:
                check_plane(np.asarray(plane.pixels))
    except (ImageFileError, ImageError):
        pass


def seed_corpus(folder):
    """Small real files of every format, each prefixed with the byte that selects its suffix."""
    from tests.test_damaged_files import _real_files

    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        return
    with tempfile.TemporaryDirectory() as scratch:
        for name, path in _real_files(Path(scratch)).items():
            if path.suffix in SUFFIXES and path.is_file():
                (folder / name).write_bytes(bytes([SUFFIXES.index(path.suffix)]) + path.read_bytes())


if __name__ == "__main__":
    corpus = [Path(a) for a in sys.argv[1:] if not a.startswith("-")]
    for folder in corpus:
        seed_corpus(folder)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
