"""Tuning sknet on a dask.distributed cluster through joblib's Dask backend.

These tests need the optional 'dask' extra (``pip install -e ".[dask]"``);
``.ci/run`` installs it, so CI runs them.
"""

import os
import warnings

import joblib
import numpy as np
import pytest

distributed = pytest.importorskip(
    "distributed", reason="the optional 'dask' extra is not installed"
)
import dask  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sknet import MLPClassifier  # noqa: E402
from sknet.optimizers import Nesterov  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.usefixtures("hang_guard"),
]


class PidRecordingNesterov(Nesterov):
    """Nesterov that appends the pid of every process it updates in to a file."""

    def __init__(self, momentum=0.9, log=None):
        super().__init__(momentum=momentum)
        self.log = log

    def update(self, params, grad, buffers, learning_rate):
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")
        super().update(params, grad, buffers, learning_rate)


def exit_in_dask_worker(fan_in, fan_out, rng):
    """An initializer that kills the dask worker it runs in."""
    try:
        distributed.get_worker()
    except ValueError:
        return rng.uniform(-0.1, 0.1, size=(fan_in, fan_out))
    os._exit(1)


@pytest.fixture(scope="module")
def client():
    """A real two-process cluster on the loopback interface."""
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


def _search(**mlp_params):
    pipe = make_pipeline(
        StandardScaler(),
        MLPClassifier(
            max_iter=5, learning_rate_init=0.05, random_state=0, **mlp_params
        ),
    )
    grid = {
        "mlpclassifier__alpha": [1e-4, 1e-1],
        "mlpclassifier__initializer": ["xavier_uniform", "he_normal"],
    }
    return GridSearchCV(pipe, grid, cv=3, n_jobs=-1)


def test_dask_search_equals_serial_search(client, digits):
    """Candidates fitted on cluster workers score exactly as a serial search."""
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serial = _search(n_jobs=2).set_params(n_jobs=1).fit(X, y)
    with joblib.parallel_config(backend="dask"):
        on_cluster = _search(n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(
        serial.cv_results_["mean_test_score"], on_cluster.cv_results_["mean_test_score"]
    )
    assert serial.best_params_ == on_cluster.best_params_


def test_dask_worker_trains_in_its_own_process(client, digits, tmp_path):
    """On a cluster worker, n_jobs=2 starts no process: it trains in the worker."""
    X, y = digits
    log = tmp_path / "pids.txt"
    search = _search(n_jobs=2, optimizer=PidRecordingNesterov(log=str(log)))
    search.set_params(refit=False)  # a refit would run here, not on the cluster
    with joblib.parallel_config(backend="dask"):
        search.fit(X, y)
    worker_pids = set(client.run(os.getpid).values())
    update_pids = {int(line) for line in log.read_text().split()}
    # Every update ran in a cluster worker, none in a process of sknet's own.
    assert update_pids and update_pids <= worker_pids


def _fit_candidate(X, y):
    """What a search sends to a worker: fit one candidate, return its score."""
    clf = MLPClassifier(initializer=exit_in_dask_worker, max_iter=2, random_state=0)
    return clf.fit(X, y).score(X, y)


def test_dask_worker_death_raises_not_hangs(client, digits):
    """A fit that kills its cluster worker ends with KilledWorker, not a hang.

    (Through joblib's Dask backend, a search may report the cancellation of
    its other tasks instead; either way it raises.)
    """
    X, y = digits
    future = client.submit(_fit_candidate, X, y, pure=False)
    with pytest.raises(distributed.scheduler.KilledWorker):
        future.result(timeout=60)
    # The cluster recovers: the same fit without the fault runs on it.
    assert client.submit(_search_free_fit, X, y, pure=False).result(timeout=60) > 0.5


def _search_free_fit(X, y):
    clf = MLPClassifier(max_iter=5, learning_rate_init=0.05, random_state=0)
    return clf.fit(X / 16, y).score(X / 16, y)


def test_dask_ml_incremental_drives_sknet_over_a_dask_array():
    """dask-ml's Incremental feeds sknet one block of a dask array at a time."""
    wrappers = pytest.importorskip(
        "dask_ml.wrappers", reason="the optional 'dask-ml' extra is not installed"
    )
    import dask.array as da

    rng = np.random.RandomState(0)
    X = rng.normal(size=(6_000, 10))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    dX = da.from_array(X, chunks=(1_000, 10))
    dy = da.from_array(y, chunks=1_000)
    clf = MLPClassifier(hidden_layer_sizes=(16,), random_state=0)
    inc = wrappers.Incremental(clf, scoring="accuracy", shuffle_blocks=False)
    inc.fit(dX, dy, classes=[0, 1])
    assert inc.estimator_.t_ == 6_000
    # The same blocks through partial_fit by hand give the same weights.
    by_hand = MLPClassifier(hidden_layer_sizes=(16,), random_state=0)
    for start in range(0, 6_000, 1_000):
        chunk = slice(start, start + 1_000)
        by_hand.partial_fit(X[chunk], y[chunk], classes=[0, 1])
    for a, b in zip(inc.estimator_.coefs_, by_hand.coefs_):
        np.testing.assert_array_equal(a, b)
    assert inc.score(dX, dy) == by_hand.score(X, y) > 0.6
