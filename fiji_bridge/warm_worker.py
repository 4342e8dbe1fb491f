"""The model kept warm for one Fiji session: ``python -m fiji_bridge.warm_worker``.

Started by :mod:`fiji_bridge.macro_client` the first time the installed menu
command runs in a Fiji (or ImageJ) session, it loads the model and a headless
ImageJ1 once, then serves requests on a localhost socket until that Fiji ends.
Each request names an ImageJ TIFF the macro saved; the worker runs
:func:`fiji_bridge.command.run_focus_quality` on it, exactly as the
Python-driven command does, and writes what the macro shows: the image with its
overlay, the "Focus Quality" table, and the optional images.

Its ImageJ is the same ``ij.jar`` and Java as the Fiji that started it, when
those can be found from the class path and ``java.home`` the macro passes.
"""
import argparse
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

from .macro_client import parent_alive, receive, send, write_state

LOGGER = logging.getLogger("focus-quality-fiji")
#: How often the worker checks that the Fiji that started it still runs.
PARENT_POLL_SECONDS = 1.0


def find_ij_jar(class_path, imagej_dir):
    """The ImageJ1 jar of the calling Fiji: on its class path, else in its ``jars/`` folder, else None."""
    candidates = [Path(p) for p in class_path.split(os.pathsep) if p]
    if imagej_dir:
        candidates += sorted(Path(imagej_dir).glob("jars/ij-*.jar")) + [Path(imagej_dir) / "ij.jar"]
    for path in candidates:
        if path.suffix == ".jar" and path.name.startswith("ij") and path.is_file():
            return path
    return None


def start(args):
    """Point Java at the caller's ImageJ, start it headless and load the model (the slow part, once)."""
    jar = find_ij_jar(args.class_path, args.imagej_dir)
    if jar is not None:
        os.environ["IJ_JAR"] = str(jar)
    if args.java_home and Path(args.java_home).is_dir():
        os.environ["JAVA_HOME"] = args.java_home
    from model.inference import predict
    from model.predictor import load_model

    from ._java import start_imagej

    start_imagej()
    load_model()
    noise = np.random.default_rng(0).integers(0, 4096, (168, 168), dtype=np.uint16)
    predict(noise)  # the first call through the network builds its graph: not on the user's first image


def assess(request):
    """Run the command on the request's image; returns the reply (paths and titles, or an error)."""
    from model.scaling import ImageError

    from ._java import jimport
    from .batch import FijiOptions
    from .command import run_focus_quality
    from .dialog import chosen_options, in_dialog_words

    IJ = jimport("ij.IJ")
    work = Path(request["work"])
    imp = IJ.openImage(str(work / "input.tif"))
    if imp is None:
        return {"error": f"the image saved for the worker cannot be read back ({work / 'input.tif'})"}
    imp.setTitle(request["title"])
    channel, slice_, frame, index = request["position"]
    if imp.isHyperStack():
        imp.setPosition(channel, slice_, frame)
    else:
        imp.setSlice(index)
    try:
        options = chosen_options(FijiOptions(), request["options"], imp.getStackSize() > 1)
        run = run_focus_quality(imp, **options.command_kwargs())
    except (ImageError, ValueError) as exc:
        return {"error": in_dialog_words(str(exc))}
    reply = {"overlay": str(work / "overlay.tif"), "table": str(work / "table.csv")}
    IJ.saveAsTiff(imp, reply["overlay"])
    run.table.save(reply["table"])
    for image, name in ((run.probability_image, "probability"), (run.best_image, "best")):
        if image is not None:
            reply[f"{name}_title"] = str(image.getTitle())
            reply[name] = str(work / f"{name}.tif")
            IJ.saveAsTiff(image, reply[name])
    if options.go_to_best:
        reply["position"] = f"{imp.getC()} {imp.getZ()} {imp.getT()}"
    return reply


def serve(server, token):
    """Answer one request per connection, one at a time, for as long as the process lives."""
    while True:
        connection, _ = server.accept()
        with connection:
            try:
                request = receive(connection)
                if request.get("token") != token:
                    continue
                started = time.perf_counter()
                reply = assess(request)
                LOGGER.info("%s: %s in %.2f s", request.get("title"), reply.get("error", "assessed"),
                            time.perf_counter() - started)
            except Exception as exc:  # one bad request must not end the session's worker
                LOGGER.exception("request failed")
                reply = {"error": f"the focus worker failed: {exc}"}
            try:
                send(connection, reply)
            except OSError:
                LOGGER.warning("the macro went away before the reply")


def watch_parent(pid, state):
    """End the process, removing its state file and log, when the Fiji that started it has ended."""
    while parent_alive(pid):
        time.sleep(PARENT_POLL_SECONDS)
    for path in (Path(state), Path(f"{state}.log"), Path(f"{state}.starting")):
        path.unlink(missing_ok=True)
    os._exit(0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True, help="file to write the port and token to once ready")
    parser.add_argument("--parent", type=int, required=True, help="process id of the Fiji to end with")
    parser.add_argument("--class-path", default="", help="the calling Java's class path")
    parser.add_argument("--imagej-dir", default="", help="the calling ImageJ's folder")
    parser.add_argument("--java-home", default="", help="the calling Java's java.home")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    threading.Thread(target=watch_parent, args=(args.parent, args.state), daemon=True).start()
    started = time.perf_counter()
    start(args)
    server = socket.create_server(("127.0.0.1", 0))
    token = secrets.token_hex(16)
    write_state(args.state, {"port": server.getsockname()[1], "token": token, "pid": os.getpid()})
    LOGGER.info("ready in %.1f s for Fiji process %d", time.perf_counter() - started, args.parent)
    serve(server, token)


if __name__ == "__main__":
    sys.exit(main())
