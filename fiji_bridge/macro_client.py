"""What the installed Fiji macro runs: hand the current image to the session's warm worker, starting it if needed.

The macro (written by ``focus-quality install-fiji``) runs this file by its
path with the environment's Python, so it uses the standard library only and
starts in a few tens of milliseconds; the model and ImageJ load once per Fiji
session in :mod:`fiji_bridge.warm_worker`. The reply goes to standard output as
``key<TAB>value`` lines, which the macro reads; ``error`` carries a message for
the user.

The worker is found through a state file named after the Fiji process (this
process's parent), so each Fiji session gets its own worker, and it ends with it.
"""
import argparse
import getpass
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: How long the first call may wait for the worker to load the model and ImageJ.
START_TIMEOUT_SECONDS = 300


def state_path(parent):
    """The state file of the worker serving Fiji process ``parent``."""
    return Path(tempfile.gettempdir()) / f"focus-quality-fiji-{getpass.getuser()}-{parent}.json"


def write_state(path, state):
    """Write the worker's port and token readable by this user only, in one step (readers never see half)."""
    partial = Path(f"{path}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as f:
        json.dump(state, f)
    os.replace(partial, path)


def send(connection, message):
    connection.sendall(json.dumps(message).encode() + b"\n")


def receive(connection):
    with connection.makefile("rb") as stream:
        line = stream.readline()
    if not line:
        raise ConnectionError("the connection closed before a message arrived")
    return json.loads(line)


def parent_alive(pid):
    """Whether process ``pid`` still runs."""
    if os.name == "nt":
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ask(state, request):
    """Send ``request`` to the worker whose state file is ``state``; its reply, or ConnectionError/OSError."""
    details = json.loads(Path(state).read_text())
    with socket.create_connection(("127.0.0.1", details["port"]), timeout=10) as connection:
        connection.settimeout(None)  # a large stack may take minutes
        send(connection, {**request, "token": details["token"]})
        return receive(connection)


def ensure_worker(state, args, *, wait=True):
    """Start the session's worker unless one is already starting; with ``wait``, return once it is ready.

    The worker's process id goes to ``<state>.starting`` as soon as it is spawned, so the macro can start it
    while its dialog is open (``--start``) and the request that follows waits for that worker instead of
    starting a second one.
    """
    log, starting = Path(f"{state}.log"), Path(f"{state}.starting")
    try:
        pid = int(starting.read_text())
    except (OSError, ValueError):
        pid = None
    if pid is None or not parent_alive(pid):
        Path(state).unlink(missing_ok=True)  # left by a worker that died
        command = [sys.executable, "-m", "fiji_bridge.warm_worker", "--state", str(state), "--parent",
                   str(os.getppid()), "--class-path", args.class_path, "--imagej-dir", args.imagej_dir,
                   "--java-home", args.java_home]
        detach = ({"creationflags": 0x00000008 | 0x00000200} if os.name == "nt"  # DETACHED_PROCESS, new group
                  else {"start_new_session": True})
        with open(log, "w") as out:
            pid = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   cwd=Path(__file__).resolve().parents[1], **detach).pid
        starting.write_text(str(pid))
    end = time.monotonic() + START_TIMEOUT_SECONDS
    while wait and not Path(state).exists():
        if not parent_alive(pid):
            tail = log.read_text(errors="replace").strip().splitlines()[-6:]
            raise RuntimeError("the focus model could not be started in this Python environment "
                               f"({sys.executable}):\n" + "\n".join(tail))
        if time.monotonic() > end:
            raise RuntimeError(f"the focus model did not start within {START_TIMEOUT_SECONDS} s (log: {log})")
        time.sleep(0.05)


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Assess the image the macro saved in WORK (see the module).")
    parser.add_argument("--start", action="store_true",
                        help="only start the session's worker, without waiting (while the dialog is open)")
    parser.add_argument("--work", help="folder with input.tif; the outputs go there too")
    parser.add_argument("--title", help="the image's title in Fiji")
    parser.add_argument("--position", type=int, nargs=4, metavar=("C", "Z", "T", "INDEX"),
                        help="the plane on screen: channel, slice, frame and stack index (1-based)")
    parser.add_argument("--class-path", default="")
    parser.add_argument("--imagej-dir", default="")
    parser.add_argument("--java-home", default="")
    parser.add_argument("options", nargs="*", metavar="OPTION=VALUE", help="the dialog's values by FijiOptions name")
    args = parser.parse_args(argv)
    if not args.start and None in (args.work, args.title, args.position):
        parser.error("--work, --title and --position are required (or --start)")
    return args


def main(argv=None):
    args = parse_args(argv)
    state = state_path(os.getppid())
    try:
        if args.start:
            if not Path(state).exists():
                ensure_worker(state, args, wait=False)
            return 0
        request = {"work": args.work, "title": args.title, "position": args.position,
                   "options": dict(option.split("=", 1) for option in args.options)}
        try:
            reply = ask(state, request)
        except (OSError, ValueError):  # no worker yet, still starting, or one left from a Fiji that crashed
            ensure_worker(state, args)
            reply = ask(state, request)
    except (OSError, RuntimeError, ValueError) as exc:
        reply = {"error": str(exc)}
    for key, value in reply.items():
        print(f"{key}\t{value}".replace("\n", "\\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
