"""Training on a stream of chunks with fit_stream and partial_fit."""

import gc
import multiprocessing
import tracemalloc

import numpy as np
import pytest

from sknet import MLPClassifier, fit_stream

N_ROWS, N_FEATURES, CHUNK = 100_000, 100, 5_000


@pytest.fixture(scope="module")
def on_disk(tmp_path_factory):
    """A 80 MB float64 data set stored as a memmap, with a held-out chunk."""
    path = tmp_path_factory.mktemp("stream") / "X.dat"
    rng = np.random.RandomState(0)
    X = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.float64, shape=(N_ROWS, N_FEATURES)
    )
    for start in range(0, N_ROWS, CHUNK):
        X[start : start + CHUNK] = rng.normal(size=(CHUNK, N_FEATURES))
    X.flush()
    w = rng.normal(size=N_FEATURES)
    y = (np.asarray(X) @ w > 0).astype(int)
    del X
    X = np.load(path, mmap_mode="r")
    X_val = rng.normal(size=(2_000, N_FEATURES))
    return X, y, (X_val, (X_val @ w > 0).astype(int))


def _chunks(X, y):
    def read():
        for start in range(0, len(y), CHUNK):
            yield X[start : start + CHUNK], y[start : start + CHUNK]

    return read


def _workers():
    return [p for p in multiprocessing.active_children() if p.name.startswith("sknet")]


def _clf(**params):
    return MLPClassifier(hidden_layer_sizes=(16,), random_state=0, **params)


def test_stream_from_memmap_peaks_at_chunk_size_not_data_size(on_disk):
    """Python-heap peak stays a fraction of the 80 MB that loading would take."""
    X, y, _ = on_disk
    data_bytes = X.nbytes
    tracemalloc.start()
    try:
        fit_stream(_clf(), _chunks(X, y), classes=[0, 1], epochs=1)
        _, streamed_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        loaded = np.array(X)
        _, loaded_peak = tracemalloc.get_traced_memory()
        del loaded
    finally:
        tracemalloc.stop()
    # Loading the whole set is traced at its full size, so the bound is real.
    assert loaded_peak >= data_bytes
    assert streamed_peak < data_bytes / 8


def test_stream_learns_and_counts_samples(on_disk):
    """One epoch over the chunks sees every row once and learns the task."""
    X, y, (X_val, y_val) = on_disk
    clf = fit_stream(_clf(), _chunks(X, y), classes=[0, 1], epochs=1)
    assert clf.t_ == N_ROWS
    assert clf.score(X_val, y_val) > 0.9


def test_stream_early_stopping_restores_best_epoch(on_disk):
    """With a held-out chunk, training stops on a plateau and keeps the best."""
    X, y, (X_val, y_val) = on_disk
    small_X, small_y = np.asarray(X[:10_000]), y[:10_000]
    clf = fit_stream(
        _clf(learning_rate_init=0.05),
        _chunks(small_X, small_y),
        classes=[0, 1],
        epochs=60,
        validation_data=(X_val, y_val),
        n_iter_no_change=3,
        tol=0.0,
    )
    scores = clf.validation_scores_
    assert len(scores) < 60
    best = int(np.argmax(scores))
    assert len(scores) == best + 1 + 3
    assert clf.best_validation_score_ == max(scores)
    assert clf.score(X_val, y_val) == max(scores)


def test_stream_with_workers_matches_serial(on_disk):
    """Two workers, reused across partial_fit calls, give the same weights."""
    X, y, _ = on_disk
    small = _chunks(np.asarray(X[:20_000]), y[:20_000])
    serial = fit_stream(_clf(), small, classes=[0, 1], epochs=2)
    parallel = fit_stream(_clf(n_jobs=2), small, classes=[0, 1], epochs=2)
    assert _workers(), "the workers should stay between partial_fit calls"
    for a, b in zip(serial.coefs_, parallel.coefs_):
        np.testing.assert_array_equal(a, b)
    del parallel
    gc.collect()
    assert not _workers()


def test_stream_one_pass_generator_raises():
    """A generator object would be empty after the first epoch: refuse it."""
    gen = ((np.zeros((2, 3)), np.array([0, 1])) for _ in range(2))
    with pytest.raises(TypeError, match="one-pass iterator"):
        fit_stream(_clf(), gen, classes=[0, 1], epochs=2)


def test_stream_empty_stream_raises():
    """A stream with no chunk is an error, not a silent no-op."""
    with pytest.raises(ValueError, match="no chunk"):
        fit_stream(_clf(), [], classes=[0, 1])


@pytest.mark.parametrize("epochs", [0, 1.5, True])
def test_stream_bad_epochs_raises(epochs):
    """epochs must be a positive int."""
    with pytest.raises((TypeError, ValueError), match="epochs must be an int"):
        fit_stream(_clf(), [], classes=[0, 1], epochs=epochs)
