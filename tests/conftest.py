"""Seeded data sets shared by the sknet tests."""

import signal

import numpy as np
import pytest
from sklearn.datasets import (
    load_digits,
    make_classification,
    make_multilabel_classification,
)
from sklearn.model_selection import train_test_split


@pytest.fixture(scope="session")
def multiclass_data():
    """A small 3-class problem: 120 rows, 6 features."""
    X, y = make_classification(
        n_samples=120,
        n_features=6,
        n_informative=4,
        n_redundant=0,
        n_classes=3,
        n_clusters_per_class=1,
        random_state=0,
    )
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


@pytest.fixture(scope="session")
def binary_data():
    """A small 2-class problem: 100 rows, 5 features."""
    X, y = make_classification(
        n_samples=100,
        n_features=5,
        n_informative=3,
        n_redundant=0,
        n_classes=2,
        random_state=1,
    )
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


@pytest.fixture(scope="session")
def multilabel_data():
    """A small multilabel problem: 100 rows, 8 features, 3 labels."""
    X, Y = make_multilabel_classification(
        n_samples=100, n_features=8, n_classes=3, random_state=2
    )
    X = X / X.max()
    X.setflags(write=False)
    Y.setflags(write=False)
    return X, Y


@pytest.fixture(scope="session")
def digits_split():
    """Digits scaled to [0, 1], stratified split of 1437 train / 360 test rows."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=360, stratify=y, random_state=0
    )
    for array in (X_train, X_test, y_train, y_test):
        array.setflags(write=False)
    return X_train, X_test, y_train, y_test


@pytest.fixture
def rng():
    """A fresh, seeded random number generator for each test."""
    return np.random.RandomState(42)


HANG_GUARD = 120


@pytest.fixture
def hang_guard():
    """Turn a test that hangs into a failure after HANG_GUARD seconds."""

    def on_alarm(signum, frame):
        raise TimeoutError(f"the test ran for more than {HANG_GUARD} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(HANG_GUARD)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
