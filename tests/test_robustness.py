"""Non-regression tests for failures found by trying to break sknet."""

import copy
import multiprocessing
import os
import pickle
import signal
import threading
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from sknet import MLPClassifier, fit_stream
from sknet.initializers import HeNormal
from sknet.optimizers import SGD, Nesterov

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data(n=3000, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 10))
    return X, np.arange(n) % 3


def _workers():
    return [p for p in multiprocessing.active_children() if p.name.startswith("sknet")]


def test_many_open_descriptors_do_not_break_the_engine():
    """Workers wait with poll, so descriptors numbered past 1024 are fine."""
    X, y = _data()
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        clf = MLPClassifier(max_iter=2, n_jobs=2, batch_size=256, random_state=0)
        clf.fit(X, y)
    finally:
        for fd in held:
            os.close(fd)
    reference = MLPClassifier(max_iter=2, batch_size=256, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.coefs_[0], reference.coefs_[0])


_INHERITED = {}


def _pickle_inherited(_):
    """In a forked child: pickle, then drop, the estimator it inherited."""
    size = len(pickle.dumps(_INHERITED["clf"]))
    _INHERITED.clear()
    return size


def test_forked_child_leaves_the_parents_workers_alone():
    """A fork that pickles an estimator with live workers does not stop them."""
    X, y = _data(2000)
    clf = MLPClassifier(n_jobs=2, random_state=0)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    workers = _workers()
    assert workers
    _INHERITED["clf"] = clf
    try:
        with multiprocessing.get_context("fork").Pool(1) as pool:
            assert pool.map(_pickle_inherited, [0])[0] > 0
    finally:
        _INHERITED.clear()
    assert all(p.is_alive() for p in workers)
    clf.partial_fit(X, y)
    assert [p.pid for p in _workers()] == [p.pid for p in workers]


class Checkpoint:
    """A callback that pickles the estimator at the end of every epoch."""

    def __init__(self):
        self.saved = []

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context):
        if context.task_name == "epoch":
            self.saved.append(pickle.dumps(estimator))
        return False


def test_pickling_during_a_parallel_fit_does_not_stop_it():
    """A checkpoint pickled mid-fit is a snapshot; the fit goes on."""
    X, y = _data()
    checkpoint = Checkpoint()
    clf = MLPClassifier(max_iter=4, n_jobs=2, batch_size=256, random_state=0)
    clf.set_callbacks(checkpoint).fit(X, y)
    assert clf.n_iter_ == 4
    assert len(checkpoint.saved) == 4
    second = pickle.loads(checkpoint.saved[1])
    assert second.n_iter_ == 2
    assert second.predict(X).shape == y.shape


def test_concurrent_fits_in_threads_restore_blas_threads():
    """Fits that overlap in threads leave BLAS's thread count as it was."""

    def blas_threads():
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    before = blas_threads()
    X, y = _data(1000)
    threads = [
        threading.Thread(
            target=MLPClassifier(max_iter=n, n_iter_no_change=np.inf).fit, args=(X, y)
        )
        for n in (30, 60)
    ]
    threads[0].start()
    threads[1].start()
    for t in threads:
        t.join()
    assert blas_threads() == before


class InterruptOnce(Nesterov):
    """Nesterov that sends itself SIGINT on its 10th update."""

    def update(self, params, grad, buffers, learning_rate):
        super().update(params, grad, buffers, learning_rate)
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 10:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_stops_the_whole_stream():
    """One Ctrl-C ends fit_stream after the current batch, not just a chunk."""
    X, y = _data(2000)

    def chunks():
        for start in range(0, 2000, 500):
            yield X[start : start + 500], y[start : start + 500]

    clf = MLPClassifier(optimizer=InterruptOnce(), batch_size=100, random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        fit_stream(clf, chunks, classes=[0, 1, 2], epochs=50)
    assert clf.t_ == 1000
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_zero_weight_validation_split_falls_back_to_the_loss():
    """Early stopping cannot score an all-zero-weight split: warn, use the loss."""
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(500, 4)), rng.randint(0, 2, 500)
    sample_weight = np.zeros(500)
    sample_weight[:5] = 1.0
    clf = MLPClassifier(early_stopping=True, max_iter=3, random_state=1)
    with pytest.warns(UserWarning, match="all zero"):
        clf.fit(X, y, sample_weight=sample_weight)
    assert clf.validation_scores_ is None
    assert np.isfinite(clf.best_loss_)


def test_warm_start_with_other_classes_raises():
    """warm_start refuses targets whose classes differ from the first fit's."""
    X, y = _data(300)
    clf = MLPClassifier(warm_start=True, max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="warm_start can only be used"):
        clf.fit(X, y % 2)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])


class ReturningSGD(SGD):
    """Computes a new array instead of updating in place."""

    def update(self, params, grad, buffers, learning_rate):
        return params - learning_rate * grad


class FractionalBuffers(SGD):
    n_buffers = 1.5


def test_optimizer_returning_an_array_raises():
    """An update that returns instead of moving params in place is an error."""
    X, y = _data(300)
    with pytest.raises(TypeError, match="in place and return None"):
        MLPClassifier(optimizer=ReturningSGD(), max_iter=1).fit(X, y)


def test_optimizer_with_fractional_buffer_count_raises():
    """n_buffers must be a whole number."""
    X, y = _data(300)
    with pytest.raises(TypeError, match="n_buffers must be an int"):
        MLPClassifier(optimizer=FractionalBuffers(), max_iter=1).fit(X, y)


def test_initializer_class_instead_of_instance_raises():
    """Passing HeNormal rather than HeNormal() says what to do."""
    X, y = _data(300)
    with pytest.raises(TypeError, match=r"pass an instance, such as HeNormal\(\)"):
        MLPClassifier(initializer=HeNormal, max_iter=1).fit(X, y)


def test_zero_weight_batches_still_count_as_seen():
    """t_ counts every row an epoch passes over, weighted zero or not."""
    X, y = _data(500)
    sample_weight = np.ones(500)
    sample_weight[:200] = 0.0
    clf = MLPClassifier(max_iter=3, batch_size=100, shuffle=False, random_state=0)
    clf.fit(X, y, sample_weight=sample_weight)
    assert clf.t_ == 1500


def test_shallow_copy_does_not_move_with_the_original():
    """copy.copy gives weights of its own: training the original leaves them."""
    X, y = _data(300)
    clf = MLPClassifier(random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    twin = copy.copy(clf)
    frozen = [c.copy() for c in twin.coefs_]
    clf.partial_fit(X, y)
    for a, b in zip(twin.coefs_, frozen):
        np.testing.assert_array_equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twin.partial_fit(X, y)


@pytest.mark.usefixtures("hang_guard")
def test_barrier_aborts_when_every_writer_is_gone():
    """A worker whose parent and peers are gone leaves the barrier, not spins."""
    from sknet._parallel import _Aborted, _Barrier

    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    try:
        with pytest.raises(_Aborted):
            _Barrier(0, 2, read_fd, []).wait()
    finally:
        os.close(read_fd)


def test_shallow_copy_keeps_its_own_curves():
    """Training a copy appends to the copy's loss curve, not the original's."""
    X, y = _data(300)
    clf = MLPClassifier(max_iter=3, random_state=0).fit(X, y)
    twin = copy.copy(clf)
    twin.partial_fit(X, y)
    assert len(clf.loss_curve_) == 3
    assert len(twin.loss_curve_) == 4


def test_bad_momentum_of_an_optimizer_object_raises_before_training():
    """Momentum(momentum=2) is refused in the calling process, workers or not."""
    from sknet.optimizers import Momentum

    X, y = _data(300)
    clf = MLPClassifier(optimizer=Momentum(momentum=2.0), n_jobs=2, max_iter=1)
    with pytest.raises(ValueError, match=r"'momentum' parameter of Momentum"):
        clf.fit(X, y)
    assert not _workers()
