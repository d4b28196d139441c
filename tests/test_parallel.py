"""Tests of the multiprocessing training engine behind MLPClassifier(n_jobs)."""

import gc
import hashlib
import json
import multiprocessing
import os
import pickle
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import warnings
from multiprocessing import resource_tracker

import numpy as np
import pytest
import scipy.sparse as sp
from joblib import Parallel, delayed, parallel_config
from joblib.externals.loky import get_reusable_executor
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV

import sknet
from sknet import MLPClassifier
from sknet.optimizers import BaseOptimizer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SHM = "/dev/shm"
# Subprocesses that hang are killed after this many seconds.
SCRIPT_TIMEOUT = 120


# Helpers: processes and shared-memory segments


def _shm_segments():
    """Names of the shared-memory segments of the standard library's naming."""
    return {name for name in os.listdir(SHM) if name.startswith("psm_")}


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _children(pid=None):
    """PIDs of the live child processes of ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(entry))
    return found


def _worker_children():
    """Child processes, except the long-lived resource trackers."""
    return {p for p in _children() if "resource_tracker" not in _cmdline(p)}


def _pid_alive(pid):
    """Whether ``pid`` runs (a zombie, exited but not reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _mapped_segments():
    """Shared-memory segments mapped by this process, as (name, mode) pairs."""
    names = set()
    with open("/proc/self/maps") as f:
        for line in f:
            match = re.search(r"/dev/shm/(psm_\w+)", line)
            if match:
                names.add(match.group(1))
    found = []
    for name in sorted(names):
        try:
            mode = stat.S_IMODE(os.stat(os.path.join(SHM, name)).st_mode)
        except FileNotFoundError:
            mode = None
        found.append((name, mode))
    return found


def _wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(autouse=True)
def no_leaks(monkeypatch, hang_guard):
    """Fail a test that leaves a child process or a shared-memory segment."""
    # Segments created by this process (other processes on the machine may
    # create and remove their own meanwhile).
    created = []
    register = resource_tracker.register

    def recording_register(name, rtype):
        if rtype == "shared_memory":
            created.append(name.lstrip("/"))
        return register(name, rtype)

    monkeypatch.setattr(resource_tracker, "register", recording_register)
    children_before = _worker_children()

    yield
    gc.collect()
    _wait_until(lambda: not (_worker_children() - children_before), 3)
    left_shm = set(created) & _shm_segments()
    left_children = _worker_children() - children_before
    for pid in left_children:
        os.kill(pid, signal.SIGKILL)
    assert not left_children, f"child processes left: {left_children}"
    assert not left_shm, f"shared-memory segments left: {left_shm}"


# Helpers: data, fits and a probing optimizer


def _data():
    X, y = make_classification(
        n_samples=400,
        n_features=20,
        n_informative=10,
        n_classes=3,
        random_state=0,
    )
    return X, y


def _fit(X, y, sample_weight=None, **params):
    params = {
        "hidden_layer_sizes": (16,),
        "max_iter": 3,
        "random_state": 0,
        **params,
    }
    clf = MLPClassifier(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(X, y, sample_weight=sample_weight)


def _assert_same_fit(clf, ref):
    assert len(clf.coefs_) == len(ref.coefs_)
    for a, b in zip(clf.coefs_ + clf.intercepts_, ref.coefs_ + ref.intercepts_):
        assert a.dtype == b.dtype
        assert np.array_equal(a, b)
    assert clf.loss_curve_ == ref.loss_curve_
    assert clf.n_iter_ == ref.n_iter_
    assert clf.t_ == ref.t_


def _weights_hash(clf):
    digest = hashlib.sha256()
    for array in clf.coefs_ + clf.intercepts_:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


class ProbeSGD(BaseOptimizer):
    """Plain SGD that also logs, kills or raises where it runs."""

    n_buffers = 0

    def __init__(self, log=None, action=None, rank=1, call=1, error=None):
        self.log = log
        self.action = action
        self.rank = rank
        self.call = call
        self.error = error

    def update(self, params, grad, buffers, learning_rate):
        grad *= learning_rate
        params -= grad
        # Counted on the object: in a worker it is that process's own copy.
        # (A table keyed by id() miscounts once a dead probe's id is reused.)
        calls = self.__dict__["_calls"] = self.__dict__.get("_calls", 0) + 1
        process = multiprocessing.current_process()
        if self.log is not None and calls == 1:
            parent = multiprocessing.parent_process()
            entry = {
                "pid": os.getpid(),
                "ppid": os.getppid(),
                "name": process.name,
                "parent": None if parent is None else parent.pid,
                "children": sorted(_worker_children()),
                "shm": _mapped_segments(),
            }
            with open(self.log, "a") as f:
                f.write(json.dumps(entry) + "\n")
        if process.name != f"sknet-worker-{self.rank}" or calls < self.call:
            return
        if self.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.action == "raise":
            raise self.error


def _read_log(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# 1. Reproducibility


def _variant(name):
    X, y = _data()
    rng = np.random.RandomState(0)
    sample_weight = None
    if name == "float32":
        X = X.astype(np.float32)
    elif name == "csr":
        X = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0))
    elif name == "sample_weight":
        sample_weight = rng.uniform(0, 2, size=len(y))
        sample_weight[::7] = 0.0
    elif name == "csr_float32_weighted":
        X = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0).astype(np.float32))
        sample_weight = rng.uniform(0, 2, size=len(y))
    return X, y, sample_weight


# Batches of 20, 150 and 300 rows are cut into 1, 2 and 4 shards; the last
# batch of an epoch is smaller, and may have fewer.

CASES = (
    [
        ("float64", optimizer, batch_size, False)
        for optimizer in ("sgd", "momentum", "nesterov")
        for batch_size in (20, 64, 200)
    ]
    + [
        (variant, "nesterov", batch_size, early_stopping)
        for variant, early_stopping in [
            ("float32", False),
            ("csr", False),
            ("sample_weight", False),
            ("float64", True),
        ]
        for batch_size in (20, 64, 200)
    ]
    + [("csr_float32_weighted", "momentum", 64, True)]
)


@pytest.mark.parametrize("variant, optimizer, batch_size, early_stopping", CASES)
def test_weights_do_not_depend_on_n_jobs(
    variant, optimizer, batch_size, early_stopping
):
    """Fits with n_jobs 1 to 4 give bitwise the same weights and losses."""
    X, y, sample_weight = _variant(variant)
    params = dict(
        optimizer=optimizer, batch_size=batch_size, early_stopping=early_stopping
    )
    ref = _fit(X, y, sample_weight, n_jobs=1, **params)
    if "float32" in variant:
        assert ref.coefs_[0].dtype == np.float32
    if early_stopping:
        assert len(ref.validation_scores_) == ref.n_iter_
    for n_jobs in (2, 3, 4):
        clf = _fit(X, y, sample_weight, n_jobs=n_jobs, **params)
        _assert_same_fit(clf, ref)
        if early_stopping:
            assert clf.validation_scores_ == ref.validation_scores_


def test_eight_shards_do_not_depend_on_n_jobs():
    """A batch of 1,100 rows (8 shards) gives the same weights for n_jobs 1-4."""
    X, y = make_classification(n_samples=1100, n_features=20, random_state=3)
    params = dict(batch_size=1100, max_iter=4, optimizer="momentum")
    ref = _fit(X, y, n_jobs=1, **params)
    for n_jobs in (2, 3, 4):
        _assert_same_fit(_fit(X, y, n_jobs=n_jobs, **params), ref)


def test_weights_do_not_depend_on_the_run():
    """Two fits with n_jobs=2 and the same seed give bitwise the same weights."""
    X, y = _data()
    first = _fit(X, y, n_jobs=2, batch_size=150)
    second = _fit(X, y, n_jobs=2, batch_size=150)
    _assert_same_fit(first, second)
    different = _fit(X, y, n_jobs=2, batch_size=150, random_state=1)
    assert not np.array_equal(different.coefs_[0], first.coefs_[0])


def test_partial_fit_does_not_depend_on_n_jobs():
    """partial_fit calls with n_jobs=1 and n_jobs=3 give the same weights."""
    X, y = _data()
    fits = []
    for n_jobs in (1, 3):
        clf = MLPClassifier((16,), batch_size=150, random_state=0, n_jobs=n_jobs)
        for start in (0, 200, 0):
            rows = slice(start, start + 200)
            clf.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        fits.append(clf)
        del clf
    _assert_same_fit(fits[1], fits[0])
    del fits
    gc.collect()


# 2. n_jobs semantics


@pytest.mark.parametrize("n_jobs", [1, None])
def test_serial_n_jobs_starts_no_process(n_jobs, tmp_path):
    """n_jobs=1 and None train in the calling process and start no process."""
    X, y = _data()
    log = str(tmp_path / "log")
    before = _worker_children()
    clf = _fit(X, y, n_jobs=n_jobs, optimizer=ProbeSGD(log=log))
    entries = _read_log(log)
    assert [e["pid"] for e in entries] == [os.getpid()]
    # Seen from inside the training step: no process was started.
    assert set(entries[0]["children"]) == before
    assert entries[0]["name"] == multiprocessing.current_process().name
    assert not multiprocessing.active_children()
    assert _worker_children() == before
    _assert_same_fit(clf, _fit(X, y, n_jobs=1, optimizer="sgd"))


def _assert_ran_in_workers(log, n_workers):
    entries = _read_log(log)
    names = sorted(e["name"] for e in entries)
    assert names == [f"sknet-worker-{r}" for r in range(n_workers)]
    pids = {e["pid"] for e in entries}
    assert len(pids) == n_workers
    assert os.getpid() not in pids
    assert all(e["parent"] == os.getpid() for e in entries)
    assert all(e["ppid"] == os.getpid() for e in entries)
    assert not any(_pid_alive(pid) for pid in pids)


def test_n_jobs_minus_one_uses_every_core(tmp_path):
    """n_jobs=-1 trains in one worker per usable core, up to 8."""
    X, y = _data()
    log = str(tmp_path / "log")
    n_workers = min(8, len(os.sched_getaffinity(0)))
    clf = _fit(X, y, n_jobs=-1, optimizer=ProbeSGD(log=log))
    if n_workers > 1:
        _assert_ran_in_workers(log, n_workers)
    _assert_same_fit(clf, _fit(X, y, n_jobs=1, optimizer="sgd"))


def test_parallel_config_sets_n_jobs_none(tmp_path):
    """n_jobs=None follows joblib.parallel_config(n_jobs=2)."""
    X, y = _data()
    log = str(tmp_path / "log")
    with parallel_config(n_jobs=2):
        clf = _fit(X, y, optimizer=ProbeSGD(log=log))
    _assert_ran_in_workers(log, 2)
    _assert_same_fit(clf, _fit(X, y, n_jobs=1, optimizer="sgd"))


def test_n_jobs_two_runs_in_two_workers(tmp_path):
    """n_jobs=2 trains in two worker processes, children of the caller."""
    X, y = _data()
    log = str(tmp_path / "log")
    _fit(X, y, n_jobs=2, optimizer=ProbeSGD(log=log))
    _assert_ran_in_workers(log, 2)


@pytest.mark.parametrize("n_jobs", [0, 2.5, "2"])
def test_invalid_n_jobs_raises_a_clear_value_error(n_jobs):
    """An invalid n_jobs raises a ValueError that names n_jobs and the class."""
    X, y = _data()
    clf = MLPClassifier((4,), max_iter=1, n_jobs=n_jobs)
    with pytest.raises(ValueError, match="'n_jobs' parameter of MLPClassifier"):
        clf.fit(X, y)
    with pytest.raises(NotFittedError, match="not fitted"):
        clf.predict(X)


def test_n_jobs_is_a_parameter_for_clone_and_grid_search():
    """clone, get_params and GridSearchCV handle n_jobs like any parameter."""
    X, y = _data()
    clf = MLPClassifier((8,), max_iter=2, random_state=0, n_jobs=2)
    assert clf.get_params()["n_jobs"] == 2
    copy = clone(clf)
    assert copy.get_params()["n_jobs"] == 2
    assert copy.set_params(n_jobs=3).n_jobs == 3
    search = GridSearchCV(clf, {"n_jobs": [1, 2, 3]}, cv=3).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] == scores[1] == scores[2]
    assert search.best_estimator_.n_jobs in (1, 2, 3)


# 3. Leaks


def test_fit_leaves_nothing_behind(tmp_path):
    """A parallel fit stops its workers and unlinks its segments on return."""
    X, y = _data()
    log = str(tmp_path / "log")
    children = _worker_children()
    clf = _fit(X, y, n_jobs=2, optimizer=ProbeSGD(log=log))
    entries = _read_log(log)
    assert len(entries) == 2
    names = {name for e in entries for name, _ in e["shm"]}
    assert names
    assert not names & _shm_segments()
    assert not any(_pid_alive(e["pid"]) for e in entries)
    assert not hasattr(clf, "_pool")
    assert _worker_children() == children
    assert not multiprocessing.active_children()


def _workers():
    return sorted(
        (p.name, p.pid)
        for p in multiprocessing.active_children()
        if p.name.startswith("sknet-worker-")
    )


def _partially_fitted(n_jobs=2):
    X, y = _data()
    clf = MLPClassifier((16,), batch_size=64, random_state=0, n_jobs=n_jobs)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    return clf


def test_partial_fit_keeps_its_workers_until_deleted():
    """Workers live on between partial_fit calls and go with the estimator."""
    X, y = _data()
    clf = _partially_fitted()
    workers = _workers()
    assert [name for name, _ in workers] == ["sknet-worker-0", "sknet-worker-1"]
    clf.partial_fit(X, y)
    clf.partial_fit(X[:100], y[:100])
    assert _workers() == workers
    del clf
    gc.collect()
    assert not _workers()
    assert not any(_pid_alive(pid) for _, pid in workers)


def test_pickling_releases_the_workers():
    """Pickling drops the workers; the copy predicts the same and has none."""
    X, y = _data()
    clf = _partially_fitted()
    proba = clf.predict_proba(X)
    data = pickle.dumps(clf)
    assert not _workers()
    copy = pickle.loads(data)
    assert not hasattr(copy, "_pool")
    assert np.array_equal(copy.predict_proba(X), proba)
    assert not _workers()
    copy.partial_fit(X, y)
    assert len(_workers()) == 2
    clf.partial_fit(X, y)
    assert len(_workers()) == 4
    assert np.array_equal(clf.predict_proba(X), copy.predict_proba(X))
    del clf, copy
    gc.collect()
    assert not _workers()


def test_refit_releases_the_workers():
    """fit after partial_fit ends with no worker left."""
    X, y = _data()
    clf = _partially_fitted()
    assert _workers()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.set_params(max_iter=2).fit(X, y)
    assert not _workers()
    _assert_same_fit(clf, _fit(X, y, n_jobs=1, max_iter=2, batch_size=64))


def test_switching_to_one_job_releases_the_workers():
    """partial_fit with n_jobs set to 1 stops the workers of earlier calls."""
    X, y = _data()
    clf = _partially_fitted()
    assert _workers()
    clf.set_params(n_jobs=1).partial_fit(X, y)
    assert not _workers()


def test_exception_releases_the_workers():
    """A failed partial_fit stops the workers and keeps the earlier state."""
    X, y = _data()
    clf = _partially_fitted()
    coefs = [c.copy() for c in clf.coefs_]
    clf.set_params(optimizer=ProbeSGD(action="raise", error=ValueError("bad step")))
    with pytest.raises(ValueError, match="bad step"):
        clf.partial_fit(X, y)
    assert not _workers()
    assert all(np.array_equal(a, b) for a, b in zip(clf.coefs_, coefs))
    assert clf.n_iter_ == 1


def test_divergence_releases_the_workers():
    """A fit that diverges raises, stops its workers and leaves no segment."""
    X, y = _data()
    with pytest.raises(ValueError, match="diverged|non-finite"):
        _fit(X, y, n_jobs=2, learning_rate_init=1e300, optimizer="sgd")
    assert not _workers()


# 4. Faults


def test_worker_error_is_public():
    """sknet.WorkerError is exported and is a RuntimeError."""
    assert issubclass(sknet.WorkerError, RuntimeError)


def test_killed_worker_raises_worker_error():
    """A worker killed mid-fit gives WorkerError; the estimator stays usable."""
    X, y = _data()
    clf = MLPClassifier((16,), max_iter=3, batch_size=64, random_state=0, n_jobs=2)
    # Whether the parent first sees the worker's exit or its closed pipe is
    # a race: repeat so that both orders are likely to occur.
    for _ in range(8):
        clf.set_params(optimizer=ProbeSGD(action="kill", rank=1, call=3))
        with pytest.raises(RuntimeError, match="died") as info:
            clf.fit(X, y)
        assert type(info.value).__name__ == "WorkerError"
        assert not _workers()
        with pytest.raises(NotFittedError, match="not fitted"):
            clf.predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.set_params(optimizer="sgd").fit(X, y)
    _assert_same_fit(clf, _fit(X, y, n_jobs=1, batch_size=64, optimizer="sgd"))


def test_killed_worker_error_names_the_signal():
    """The WorkerError of a worker killed by SIGKILL says so."""
    X, y = _data()
    clf = MLPClassifier((16,), max_iter=3, random_state=0, n_jobs=2)
    clf.set_params(optimizer=ProbeSGD(action="kill", rank=1, call=2))
    with pytest.raises(RuntimeError, match=r"died unexpectedly \(killed by SIGKILL"):
        clf.fit(X, y)


def test_worker_killed_between_epochs_raises_worker_error(monkeypatch):
    """A worker that dies while idle between epochs gives WorkerError too."""
    X, y = _data()
    killed = []

    class KillingStdout:
        """Kills worker 1 when the estimator reports the end of an epoch."""

        def write(self, text):
            for process in multiprocessing.active_children():
                if process.name == "sknet-worker-1" and not killed:
                    os.kill(process.pid, signal.SIGKILL)
                    process.join()
                    killed.append(process.pid)
            return len(text)

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", KillingStdout())
    clf = MLPClassifier((16,), max_iter=3, verbose=True, random_state=0, n_jobs=2)
    with pytest.raises(RuntimeError, match="died"):
        clf.fit(X, y)
    assert killed
    assert not _workers()
    with pytest.raises(NotFittedError, match="not fitted"):
        clf.predict(X)


def test_partial_fit_replaces_a_dead_worker():
    """partial_fit starts new workers when one died since the last call."""
    X, y = _data()
    clf = _partially_fitted()
    workers = _workers()
    os.kill(workers[1][1], signal.SIGKILL)
    assert _wait_until(lambda: len(_workers()) < 2, 10)
    clf.partial_fit(X, y)
    replaced = _workers()
    assert len(replaced) == 2
    assert not {pid for _, pid in replaced} & {pid for _, pid in workers}
    ref = MLPClassifier((16,), batch_size=64, random_state=0)
    ref.partial_fit(X, y, classes=[0, 1, 2]).partial_fit(X, y)
    _assert_same_fit(clf, ref)
    del clf
    gc.collect()


@pytest.mark.parametrize("rank", [0, 1])
def test_worker_exception_reaches_the_caller(rank):
    """An exception raised in a worker reaches fit with its type and message."""
    X, y = _data()
    error = ZeroDivisionError("boom")
    optimizer = ProbeSGD(action="raise", rank=rank, call=2, error=error)
    clf = MLPClassifier((16,), max_iter=3, random_state=0, n_jobs=2)
    with pytest.raises(ZeroDivisionError, match="^boom$"):
        clf.set_params(optimizer=optimizer).fit(X, y)
    assert not _workers()
    with pytest.raises(NotFittedError, match="not fitted"):
        clf.predict(X)


def test_worker_exception_of_a_local_class_reaches_the_caller():
    """An exception class defined in a function reaches fit as it was raised."""

    class LocalError(Exception):
        """An exception that only cloudpickle can ship."""

    X, y = _data()
    optimizer = ProbeSGD(action="raise", rank=1, error=LocalError("local boom"))
    clf = MLPClassifier((16,), max_iter=3, random_state=0, n_jobs=2)
    with pytest.raises(LocalError, match="local boom"):
        clf.set_params(optimizer=optimizer).fit(X, y)
    assert not _workers()


INTERRUPT_SCRIPT = """
import json, multiprocessing, os, re, sys, warnings
import numpy as np
from sklearn.datasets import make_classification
from sknet import MLPClassifier
from sknet.optimizers import BaseOptimizer

LOG = sys.argv[1]


class LoggingSGD(BaseOptimizer):
    n_buffers = 0

    def update(self, params, grad, buffers, learning_rate):
        grad *= learning_rate
        params -= grad
        if not getattr(self, "logged", False):
            self.logged = True
            with open("/proc/self/maps") as f:
                shm = sorted(set(re.findall(r"/dev/shm/(psm_\\w+)", f.read())))
            entry = {"pid": os.getpid(), "shm": shm,
                     "name": multiprocessing.current_process().name}
            with open(LOG, "a") as f:
                f.write(json.dumps(entry) + "\\n")


X, y = make_classification(n_samples=2000, n_features=20, random_state=0)
clf = MLPClassifier((32,), optimizer=LoggingSGD(), batch_size=64, max_iter=100000,
                    tol=0.0, n_iter_no_change=np.inf, random_state=0, n_jobs=2)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    clf.fit(X, y)
with open(LOG) as f:
    segments = {s for line in f for s in json.loads(line)["shm"]}
print(json.dumps({
    "interrupted": any(
        issubclass(w.category, UserWarning)
        and re.search("interrupted", str(w.message)) for w in caught),
    "finite": all(np.isfinite(a).all() for a in clf.coefs_ + clf.intercepts_),
    "n_iter": clf.n_iter_,
    "children": [p.pid for p in multiprocessing.active_children()],
    "segments": sorted(segments),
    "segments_left": sorted(segments & set(os.listdir("/dev/shm"))),
}), flush=True)
"""


def _start_script(script, *args):
    return subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _same_group(pid, pgid):
    try:
        return os.getpgid(pid) == pgid
    except OSError:
        return False


def _group_alive(pgid):
    return any(
        _pid_alive(int(entry)) and _same_group(int(entry), pgid)
        for entry in os.listdir("/proc")
        if entry.isdigit()
    )


def _stop_script(proc):
    """Kill a script that did not end; its workers and tracker then exit."""
    if proc.poll() is None:
        proc.kill()
        proc.communicate()
    if _wait_until(lambda: not _group_alive(proc.pid), 10):
        return
    # Stuck workers: kill them, and let the resource tracker clean up.
    for entry in filter(str.isdigit, os.listdir("/proc")):
        pid = int(entry)
        if _same_group(pid, proc.pid) and "resource_tracker" not in _cmdline(pid):
            os.kill(pid, signal.SIGKILL)
    if not _wait_until(lambda: not _group_alive(proc.pid), 10):
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_for_workers(proc, log, n_workers=2):
    started = _wait_until(
        lambda: len(_read_log(log)) >= n_workers or proc.poll() is not None,
        SCRIPT_TIMEOUT,
    )
    assert started and proc.poll() is None, proc.communicate()[1]
    entries = _read_log(log)
    names = [f"sknet-worker-{r}" for r in range(n_workers)]
    assert sorted(e["name"] for e in entries) == names
    return entries


def test_ctrl_c_stops_a_parallel_fit(tmp_path):
    """Ctrl-C stops a parallel fit with a warning, keeping finite weights."""
    script, log = tmp_path / "interrupt.py", tmp_path / "log"
    script.write_text(INTERRUPT_SCRIPT)
    proc = _start_script(script, log)
    try:
        entries = _wait_for_workers(proc, log)
        time.sleep(1.0)
        assert proc.poll() is None
        # As a terminal does: the whole process group gets SIGINT.
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        _stop_script(proc)
    assert proc.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["interrupted"]
    assert report["finite"]
    assert report["n_iter"] >= 0
    assert report["children"] == []
    assert report["segments"]
    assert report["segments_left"] == []
    assert _wait_until(lambda: not any(_pid_alive(e["pid"]) for e in entries), 10)
    assert not set(report["segments"]) & _shm_segments()
    assert "leaked" not in err


def test_killed_parent_leaves_nothing_behind(tmp_path):
    """Workers of a parent killed mid-fit exit and its segments are removed."""
    script, log = tmp_path / "interrupt.py", tmp_path / "log"
    script.write_text(INTERRUPT_SCRIPT)
    proc = _start_script(script, log)
    try:
        entries = _wait_for_workers(proc, log)
        time.sleep(0.5)
        proc.kill()
        proc.communicate(timeout=30)
        workers_gone = _wait_until(
            lambda: not any(_pid_alive(e["pid"]) for e in entries), 30
        )
    finally:
        _stop_script(proc)
    assert workers_gone
    segments = {name for e in entries for name in e["shm"]}
    assert segments
    assert _wait_until(lambda: not segments & _shm_segments(), 10)


# 5. Start methods

START_METHOD_SCRIPT = """
import hashlib, multiprocessing, os, sys, warnings
print("SCRIPT-LOADED", flush=True)
METHOD, OPTIMIZER, LOG = sys.argv[1:4]
if METHOD != "default":
    multiprocessing.set_start_method(METHOD, force=True)

from sklearn.datasets import load_digits
from sknet import MLPClassifier
from sknet.optimizers import BaseOptimizer


class MainSGD(BaseOptimizer):
    n_buffers = 0

    def update(self, params, grad, buffers, learning_rate):
        grad *= learning_rate
        params -= grad
        if not getattr(self, "logged", False):
            self.logged = True
            with open(LOG, "a") as f:
                f.write(multiprocessing.current_process().name + "\\n")


X, y = load_digits(return_X_y=True)
optimizer = MainSGD() if OPTIMIZER == "main" else OPTIMIZER
clf = MLPClassifier((16,), optimizer=optimizer, max_iter=3, random_state=0, n_jobs=2)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    clf.fit(X / 16.0, y)
digest = hashlib.sha256()
for array in clf.coefs_ + clf.intercepts_:
    digest.update(array.tobytes())
print("FIT", multiprocessing.get_start_method(), digest.hexdigest(), flush=True)
"""


@pytest.fixture(scope="module")
def digits_hash():
    """Hash of the weights of the start-method script's fit, with n_jobs=1."""
    X, y = load_digits(return_X_y=True)
    clf = _fit(X / 16.0, y, n_jobs=1, optimizer="sgd")
    return _weights_hash(clf)


@pytest.mark.parametrize(
    "method, optimizer",
    [
        ("spawn", "sgd"),
        ("forkserver", "sgd"),
        ("fork", "sgd"),
        ("default", "sgd"),
        ("spawn", "main"),
        ("forkserver", "main"),
    ],
)
def test_script_without_main_guard(method, optimizer, tmp_path, digits_hash):
    """A script without a __main__ guard trains once, alike for every method."""
    script, log = tmp_path / "train.py", tmp_path / "log"
    script.write_text(START_METHOD_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), method, optimizer, str(log)],
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.count("SCRIPT-LOADED") == 1, result.stdout
    fits = [line.split() for line in lines if line.startswith("FIT")]
    assert len(fits) == 1, result.stdout
    _, used_method, digest = fits[0]
    expected = multiprocessing.get_start_method() if method == "default" else method
    assert used_method == expected
    assert digest == digits_hash
    assert "leaked" not in result.stderr
    if optimizer == "main":
        names = sorted(log.read_text().split())
        assert names == ["sknet-worker-0", "sknet-worker-1"]


# 6. Nested parallelism


def _fit_recording_warnings(X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = MLPClassifier((16,), max_iter=3, random_state=0, n_jobs=2)
        clf.fit(X, y)
    messages = [
        str(w.message) for w in caught if not issubclass(w.category, ConvergenceWarning)
    ]
    return clf.coefs_, clf.intercepts_, messages


def test_fit_inside_joblib_worker_runs_in_process():
    """Inside a loky worker, n_jobs=2 trains in-process with a warning."""
    X, y = _data()
    ref = _fit(X, y, n_jobs=1)
    try:
        results = Parallel(n_jobs=2)(
            delayed(_fit_recording_warnings)(X, y) for _ in range(2)
        )
    finally:
        get_reusable_executor().shutdown(wait=True)
    for coefs, intercepts, messages in results:
        assert all(np.array_equal(a, b) for a, b in zip(coefs, ref.coefs_))
        assert all(np.array_equal(a, b) for a, b in zip(intercepts, ref.intercepts_))
        assert len(messages) == 1
        assert re.search("calling process", messages[0])
        assert re.search("joblib worker", messages[0])


def test_fit_in_a_thread_runs_in_process():
    """In a thread other than the main one, n_jobs=2 trains in-process."""
    X, y = _data()
    ref = _fit(X, y, n_jobs=1)
    results = []
    thread = threading.Thread(
        target=lambda: results.append(_fit_recording_warnings(X, y))
    )
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive()
    coefs, intercepts, messages = results[0]
    assert all(np.array_equal(a, b) for a, b in zip(coefs, ref.coefs_))
    assert all(np.array_equal(a, b) for a, b in zip(intercepts, ref.intercepts_))
    assert len(messages) == 1
    assert re.search("calling process", messages[0])
    assert re.search("main thread", messages[0])
    assert not _workers()


def test_grid_search_with_parallel_estimator():
    """GridSearchCV(n_jobs=2) over an n_jobs=-1 estimator scores as serially."""
    X, y = _data()
    estimator = MLPClassifier((16,), n_jobs=-1, max_iter=5, random_state=0)
    grid = {"alpha": [1e-4, 1e-2]}
    try:
        parallel = GridSearchCV(estimator, grid, cv=3, n_jobs=2).fit(X, y)
    finally:
        get_reusable_executor().shutdown(wait=True)
    serial = GridSearchCV(estimator, grid, cv=3, n_jobs=1).fit(X, y)
    assert np.array_equal(
        parallel.cv_results_["mean_test_score"],
        serial.cv_results_["mean_test_score"],
    )
    _assert_same_fit(parallel.best_estimator_, serial.best_estimator_)


# 7. Shared-memory hygiene


def test_segments_are_private_and_randomly_named(tmp_path):
    """Segments seen by workers are owner-only with random hex names."""
    X, y = _data()
    log = str(tmp_path / "log")
    _fit(X, y, n_jobs=2, optimizer=ProbeSGD(log=log))
    clf = MLPClassifier((16,), random_state=0, n_jobs=2)
    clf.set_params(optimizer=ProbeSGD(log=log))
    clf.partial_fit(X, y, classes=[0, 1, 2])
    del clf
    gc.collect()
    entries = _read_log(log)
    assert len(entries) == 4
    segments = {tuple(s) for e in entries for s in e["shm"]}
    # fit: the state; partial_fit: the state and the data.
    assert len(segments) == 3
    for name, mode in segments:
        assert re.fullmatch(r"psm_[0-9a-f]{8,}", name)
        assert mode == 0o600
    assert not {name for name, _ in segments} & _shm_segments()
