"""The one module that starts Java: ImageJ from a Fiji installation (pyimagej) or ImageJ1 (scyjava).

Entry points: :func:`start_imagej` and :func:`jimport`. Java can be started
only once per Python process, so the first call decides the backend.

- **Fiji** (``fiji_dir`` argument or the ``FIJI_DIR`` environment variable):
  ``imagej.init(fiji_dir)`` through pyimagej, imported here and only here,
  because importing it changes scyjava's configuration for good.
- **ImageJ1** otherwise: the ``ij.jar`` of Debian's ``libij-java`` (or the
  ``IJ_JAR`` environment variable) through scyjava, with Java fetching switched
  off (scyjava would otherwise download a JRE even when one is installed).

The focus command uses only the ImageJ1 API (``ij.*``), which Fiji bundles, so
the same code runs on both backends.
"""
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

LOGGER = logging.getLogger(__name__)

DEFAULT_IJ_JAR = Path("/usr/share/java/ij.jar")

_LOCK = threading.Lock()
_SESSION = None


class ImageJUnavailable(RuntimeError):
    """ImageJ cannot be started here; the message says what is missing and what to do."""


@dataclass(frozen=True)
class ImageJSession:
    """The running ImageJ: which backend, whether it has a window, its version, the pyimagej gateway (Fiji only)."""

    backend: str
    gui: bool
    version: str
    gateway: object = None


def jimport(name):
    """A Java class by its full name (after :func:`start_imagej`)."""
    import scyjava

    return scyjava.jimport(name)


def start_imagej(fiji_dir=None, *, gui=False):
    """Start ImageJ once per process and return the :class:`ImageJSession`.

    Parameters
    ----------
    fiji_dir : str or Path, optional
        A Fiji.app folder; default ``$FIJI_DIR``. Without one, ImageJ1 from ``ij.jar``.
    gui : bool
        Open ImageJ's window (needs a display, e.g. Xvfb). Fixed by the first call.

    Raises
    ------
    ImageJUnavailable
        No Java, no ij.jar / Fiji, or a second call asking for another mode.
    """
    global _SESSION
    fiji_dir = fiji_dir or os.environ.get("FIJI_DIR") or None
    with _LOCK:
        if _SESSION is None:
            _SESSION = _start_fiji(Path(fiji_dir), gui) if fiji_dir else _start_imagej1(gui)
            LOGGER.info("started %s %s%s", _SESSION.backend, _SESSION.version, " with its window" if gui else "")
        elif _SESSION.gui != gui:
            raise ImageJUnavailable(
                f"ImageJ already runs {'with' if _SESSION.gui else 'without'} its window in this process; "
                "Java can be started only once per Python process")
        return _SESSION


def _configure_scyjava(fetch, gui):
    import scyjava

    if fetch == "never":
        # scyjava logs "Fetching zulu-jre..." at INFO even when it may not fetch and then uses the
        # system Java: a line that reads as a download when nothing is downloaded.
        logging.getLogger("scyjava._jdk_fetch").setLevel(logging.WARNING)
    if scyjava.jvm_started():
        raise ImageJUnavailable("Java was already started in this process by something else")
    scyjava.config.set_java_constraints(fetch=fetch)
    if not gui:
        scyjava.config.add_option("-Djava.awt.headless=true")
    return scyjava


def _start_imagej1(gui):
    jar = Path(os.environ.get("IJ_JAR", DEFAULT_IJ_JAR))
    if not jar.is_file():
        raise ImageJUnavailable(
            f"no ImageJ found: {jar} does not exist. Install ImageJ1 (Debian/Ubuntu: "
            "`apt-get install libij-java`), set IJ_JAR to an ij.jar, or give a Fiji folder "
            "(--fiji DIR or FIJI_DIR)")
    scyjava = _configure_scyjava("never", gui)
    scyjava.config.add_classpath(str(jar))
    try:
        scyjava.start_jvm()
    except Exception as exc:
        raise ImageJUnavailable(f"Java could not be started for ImageJ1 ({exc}); is a JRE installed?") from None
    if gui:
        jimport("ij.ImageJ")()
    return ImageJSession("imagej1", gui, str(jimport("ij.IJ").getFullVersion()))


def _start_fiji(fiji_dir, gui):
    if not (fiji_dir / "jars").is_dir():
        raise ImageJUnavailable(f"{fiji_dir} is not a Fiji installation (it has no jars/ folder)")
    _configure_scyjava("auto", gui)  # pyimagej 1.8 fails with "never"
    import imagej

    try:
        gateway = imagej.init(str(fiji_dir), mode="interactive" if gui else "headless")
    except Exception as exc:
        raise ImageJUnavailable(f"Fiji at {fiji_dir} could not be started: {exc}") from None
    if gui:
        gateway.ui().showUI()
    return ImageJSession("fiji", gui, str(jimport("ij.IJ").getFullVersion()), gateway)
