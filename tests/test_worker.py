"""The model in a worker process (what CellProfiler's window uses): same numbers, clear failures, no orphans."""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from model import predict
from model.worker import WorkerError, WorkerModel

from .conftest import ROOT


@pytest.fixture(scope="module")
def worker():
    model = WorkerModel()
    yield model
    model.close()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_same_numbers_as_in_process(worker, shipped_model, in_focus_image, out_of_focus_image):
    for image in (in_focus_image, out_of_focus_image):
        np.testing.assert_array_equal(predict(image, model=worker).patch_probabilities,
                                      predict(image).patch_probabilities)
    assert worker.path == shipped_model.path and worker.pid != os.getpid()


def test_a_worker_that_dies_during_a_call_gives_a_clear_error_then_restarts(worker, in_focus_image):
    predict(in_focus_image, model=worker)
    pid = worker.pid
    patches = np.random.default_rng(0).random((4000, 84, 84), dtype=np.float32) * 0.1
    killer = threading.Timer(0.3, os.kill, (pid, signal.SIGKILL))
    killer.start()
    with pytest.raises(WorkerError, match=r"worker process stopped \(exit status -9\)"):
        worker.predict_patches(patches)
    killer.join()
    assert predict(in_focus_image, model=worker).patch_count == 48  # a new worker took over
    assert worker.pid not in (None, pid)


def test_the_worker_dies_with_its_host():
    code = ("import os, sys, numpy as np; from model.worker import WorkerModel; w = WorkerModel();"
            "w.predict_patches(np.zeros((1, 84, 84), np.float32)); print(w.pid, flush=True);"
            "os.kill(os.getpid(), 9)")
    host = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert host.returncode == -9
    pid = int(host.stdout.split()[0])
    end = time.time() + 20
    while alive(pid) and time.time() < end:
        time.sleep(0.2)
    assert not alive(pid)


def test_a_worker_that_does_not_answer_is_a_clear_error_not_a_hang():
    with pytest.raises(WorkerError, match="did not answer within 0.05 s"):
        WorkerModel(start_timeout=0.05).predict_patches(np.zeros((1, 84, 84), np.float32))


def test_a_missing_model_is_reported_from_the_worker(tmp_path):
    with pytest.raises(WorkerError, match="could not load the model: ModelError: no SavedModel"):
        WorkerModel(tmp_path).predict_patches(np.zeros((1, 84, 84), np.float32))


def test_close_stops_the_worker(in_focus_image):
    model = WorkerModel()
    predict(in_focus_image, model=model)
    pid = model.pid
    model.close()
    assert model.pid is None and not alive(pid)
