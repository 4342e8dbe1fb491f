"""The focus model in a separate worker process, for hosts that must not load TensorFlow themselves.

A GUI host (CellProfiler's window) has often loaded Mesa's OpenGL, and with it
a second copy of LLVM, before the first image is measured; TensorFlow's own
LLVM then crashes the process as it loads. :class:`WorkerModel` keeps
TensorFlow out of the host: it starts ``python -m model.worker`` once, the
worker loads the model and stays warm, and patches go to it and probabilities
come back over its standard input and output.

- The worker dies with its host: it exits when its input closes, and on Linux
  the kernel also ends it when the host process ends.
- A worker that dies or stops answering gives a :class:`WorkerError` that says
  what happened (exit status, the end of its error output), never a hang; the
  next call starts a new worker.

Messages are an 8-byte little-endian header length, a JSON header and raw
array bytes (``"shape"``, ``"dtype"`` in the header).
"""
import atexit
import collections
import json
import logging
import os
import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger(__name__)

_HEADER = struct.Struct("<Q")

#: Seconds the worker may take to import TensorFlow and load the model.
START_TIMEOUT = 300.0
#: Seconds one batch of patches may take.
CALL_TIMEOUT = 600.0


class WorkerError(RuntimeError):
    """The worker process failed, died or did not answer; the message says which and why."""


class WorkerModel:
    """A focus model running in a worker process, with the ``predict_patches`` method of a loaded model.

    Parameters
    ----------
    model : str or Path, optional
        SavedModel folder; default: the shipped model.
    start_timeout, call_timeout : float
        Seconds to wait for the worker to be ready, and for each answer.

    Thread-safe; the worker starts on the first call.
    """

    def __init__(self, model=None, *, start_timeout=START_TIMEOUT, call_timeout=CALL_TIMEOUT):
        self.model = None if model is None else str(Path(model).expanduser().resolve())
        self.start_timeout, self.call_timeout = start_timeout, call_timeout
        self._process = None
        self._stderr = collections.deque(maxlen=40)
        self._lock = threading.Lock()
        self.path = None

    @property
    def pid(self):
        """Process id of the running worker, or None."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def predict_patches(self, patches):
        """Probabilities ``(B, 11)`` for patches ``(B, 84, 84)`` on the model scale, computed by the worker."""
        patches = np.ascontiguousarray(patches, dtype=np.float32)
        with self._lock:
            if self.pid is None:
                self._start()
            try:
                self._send({"op": "predict"}, patches)
                header, payload = self._receive(self.call_timeout)
            except WorkerError:
                self._stop()
                raise
        if "error" in header:
            raise WorkerError(f"the focus model's worker process failed: {header['error']}")
        return payload.astype(np.float64)

    def close(self):
        """Stop the worker (a later call starts a new one)."""
        with self._lock:
            self._stop()

    def _start(self):
        command = [sys.executable, "-m", "model.worker"] + ([self.model] if self.model else [])
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self._stderr.clear()
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, close_fds=True)
        threading.Thread(target=self._drain_stderr, args=(self._process.stderr,), daemon=True).start()
        try:
            header, _ = self._receive(self.start_timeout)
        except WorkerError:
            self._stop()
            raise
        if "error" in header:
            self._stop()
            raise WorkerError(f"the focus model's worker process could not load the model: {header['error']}")
        self.path = Path(header["model"])
        LOGGER.info("focus model worker %d ready (%s)", self._process.pid, self.path)

    def _drain_stderr(self, stream):
        for line in iter(stream.readline, b""):
            self._stderr.append(line.decode(errors="replace").rstrip())

    def _stop(self):
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _send(self, header, array):
        data = json.dumps({**header, "shape": list(array.shape), "dtype": str(array.dtype)}).encode()
        try:
            self._process.stdin.write(_HEADER.pack(len(data)) + data)
            self._process.stdin.write(memoryview(array).cast("B"))
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerError(self._death_notice()) from None

    def _receive(self, timeout):
        deadline = time.monotonic() + timeout
        size = _HEADER.unpack(self._read(_HEADER.size, deadline))[0]
        header = json.loads(self._read(size, deadline))
        payload = None
        if "shape" in header:
            dtype = np.dtype(header["dtype"])
            count = int(np.prod(header["shape"]))
            payload = np.frombuffer(self._read(count * dtype.itemsize, deadline), dtype).reshape(header["shape"])
        return header, payload

    def _read(self, count, deadline):
        stream, chunks, remaining = self._process.stdout, [], count
        while remaining:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([stream], [], [], wait)[0]:
                seconds = self.call_timeout if self.path else self.start_timeout
                raise WorkerError(f"the focus model's worker process did not answer within {seconds:g} s")
            chunk = os.read(stream.fileno(), min(remaining, 1 << 20))
            if not chunk:
                raise WorkerError(self._death_notice())
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _death_notice(self):
        try:
            status = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            status = "still running"
        time.sleep(0.1)  # let the stderr reader catch the last lines
        tail = "\n".join(list(self._stderr)[-10:])
        return (f"the focus model's worker process stopped (exit status {status})"
                + (f"; its last output:\n{tail}" if tail else ""))


_SHARED = {}
_SHARED_LOCK = threading.Lock()


def shared_worker(model=None):
    """One :class:`WorkerModel` per model folder and process, stopped when the process exits."""
    key = None if model is None else str(Path(model).expanduser().resolve())
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = WorkerModel(key)
            atexit.register(_SHARED[key].close)
        return _SHARED[key]


def _die_with_parent():
    """On Linux, have the kernel end this process when its parent ends."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # the parent was already gone
            sys.exit(1)


def _serve(model_path):
    """The worker's side: load the model, then answer requests until the input closes."""
    _die_with_parent()
    # Stray prints (ours or a library's) must not corrupt the replies: keep the real
    # stdout for replies and point file descriptor 1 at stderr.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer

    def reply(header, array=None):
        if array is not None:
            header = {**header, "shape": list(array.shape), "dtype": str(array.dtype)}
        data = json.dumps(header).encode()
        replies.write(_HEADER.pack(len(data)) + data)
        if array is not None:
            replies.write(memoryview(np.ascontiguousarray(array)).cast("B"))
        replies.flush()

    from .predictor import load_model

    try:
        model = load_model(model_path)
    except Exception as exc:  # reported to the host, which raises it there
        reply({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    reply({"model": str(model.path)})
    while True:
        raw = requests.read(_HEADER.size)
        if len(raw) < _HEADER.size:
            return 0  # the host closed our input: it is done or gone
        header = json.loads(requests.read(_HEADER.unpack(raw)[0]))
        count = int(np.prod(header["shape"])) * np.dtype(header["dtype"]).itemsize
        patches = np.frombuffer(requests.read(count), header["dtype"]).reshape(header["shape"])
        try:
            reply({}, model.predict_patches(patches).astype(np.float32))
        except Exception as exc:
            reply({"error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="focus worker: %(levelname)s: %(message)s")
    sys.exit(_serve(sys.argv[1] if len(sys.argv) > 1 else None))
