"""Tests of the behaviour of sknet.MLPClassifier."""

import os
import pickle
import re
import signal
import threading
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sknet import MLPClassifier
from sknet.initializers import XavierUniform
from sknet.optimizers import OPTIMIZERS, Nesterov

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _flat(clf):
    """The fitted weights then biases, as one flat array."""
    return np.concatenate([a.ravel() for a in clf.coefs_ + clf.intercepts_])


def _assert_warned_here(record, category, match):
    """A warning of ``category`` matching ``match`` points at this test file."""
    found = [
        w
        for w in record
        if issubclass(w.category, category) and re.search(match, str(w.message))
    ]
    assert found
    assert all(w.filename == __file__ for w in found)


# Divergence tests overflow on purpose.
ignore_overflow = pytest.mark.filterwarnings(
    "ignore:overflow encountered:RuntimeWarning",
    "ignore:invalid value encountered:RuntimeWarning",
)


def _assert_same_weights(a, b):
    """Two fitted estimators have bitwise equal weights and biases."""
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert_array_equal(x, y)


class RecordingNesterov(Nesterov):
    """Nesterov that keeps a copy of the parameters after every update."""

    def update(self, params, grad, buffers, learning_rate):
        super().update(params, grad, buffers, learning_rate)
        if not hasattr(self, "history"):
            self.history = []
        self.history.append(params.copy())


class RecordingInitializer:
    """XavierUniform on the fit's random state, keeping what it returned."""

    def __init__(self):
        self.weights = []

    def __call__(self, fan_in, fan_out, rng):
        W = XavierUniform()(fan_in, fan_out, rng)
        self.weights.append(W.copy())
        return W


# L2 penalty


def test_alpha_shrinks_weights(multiclass_data):
    """A large alpha gives a smaller weight norm than alpha=0 on the same seed."""
    X, y = multiclass_data
    params = dict(hidden_layer_sizes=(10,), max_iter=60, random_state=0)
    free = MLPClassifier(alpha=0.0, **params).fit(X, y)
    shrunk = MLPClassifier(alpha=5.0, **params).fit(X, y)
    norm_free = sum(float((w**2).sum()) for w in free.coefs_)
    norm_shrunk = sum(float((w**2).sum()) for w in shrunk.coefs_)
    assert norm_shrunk < 0.8 * norm_free


@pytest.mark.parametrize("weighted", [False, True])
def test_loss_includes_documented_l2_term(weighted, multiclass_data):
    """loss_curve_[0] is the mean loss at the first weights plus 0.5 a |W|^2 / s."""
    X, y = multiclass_data
    n = X.shape[0]
    sw = np.random.RandomState(0).uniform(0.5, 3.0, n) if weighted else np.ones(n)
    alpha = 2.5
    init = RecordingInitializer()
    clf = MLPClassifier(
        hidden_layer_sizes=(7,),
        initializer=init,
        alpha=alpha,
        batch_size=n,
        shuffle=False,
        max_iter=1,
        random_state=0,
    )
    clf.fit(X, y, sample_weight=sw if weighted else None)

    W1, W2 = init.weights
    hidden = np.maximum(X @ W1, 0.0)
    Z = hidden @ W2
    log_proba = Z - Z.max(axis=1, keepdims=True)
    log_proba -= np.log(np.exp(log_proba).sum(axis=1, keepdims=True))
    row_loss = -log_proba[np.arange(n), y]
    mean_loss = np.dot(sw, row_loss) / sw.sum()
    penalty = 0.5 * alpha * ((W1**2).sum() + (W2**2).sum()) / sw.sum()
    assert penalty > 0.01
    assert clf.loss_curve_[0] == pytest.approx(mean_loss + penalty, rel=1e-10)
    assert clf.loss_ == clf.loss_curve_[0]


# Stopping rules


def _early_stopped(optimizer):
    """An early-stopping classifier whose 90 training rows make one batch."""
    return MLPClassifier(
        hidden_layer_sizes=(10,),
        optimizer=optimizer,
        learning_rate_init=0.05,
        early_stopping=True,
        validation_fraction=0.25,
        n_iter_no_change=5,
        batch_size=90,
        max_iter=200,
        random_state=0,
    )


def test_early_stopping_counts_exactly_n_iter_no_change(multiclass_data):
    """Early stopping stops n_iter_no_change epochs after the best one."""
    X, y = multiclass_data
    opt = RecordingNesterov()
    clf = _early_stopped(opt).fit(X, y)
    scores = clf.validation_scores_
    assert clf.n_iter_ < clf.max_iter
    assert len(scores) == clf.n_iter_
    assert max(scores) == clf.best_validation_score_
    assert clf.best_loss_ is None

    best_epoch = int(np.argmax(scores)) + 1
    last_improved, best = 0, -np.inf
    for epoch, score in enumerate(scores, start=1):
        if score > best + clf.tol:
            last_improved = epoch
        best = max(best, score)
    assert last_improved == best_epoch
    assert clf.n_iter_ == best_epoch + clf.n_iter_no_change


def test_early_stopping_restores_best_weights(multiclass_data):
    """The final weights are those after the best epoch, not the last one."""
    X, y = multiclass_data
    opt = RecordingNesterov()
    clf = _early_stopped(opt).fit(X, y)
    # 90 training rows in one batch: one update per epoch.
    assert len(opt.history) == clf.n_iter_
    best_epoch = int(np.argmax(clf.validation_scores_)) + 1
    assert best_epoch < clf.n_iter_
    assert_array_equal(_flat(clf), opt.history[best_epoch - 1])
    assert not np.array_equal(_flat(clf), opt.history[-1])


def test_early_stopping_validation_score_is_held_out_accuracy(multiclass_data):
    """best_validation_score_ is the final model's accuracy on the held-out rows."""
    X, y = multiclass_data
    clf = MLPClassifier(
        hidden_layer_sizes=(10,),
        learning_rate_init=0.05,
        early_stopping=True,
        validation_fraction=0.25,
        n_iter_no_change=5,
        batch_size=90,
        random_state=0,
    ).fit(X, y)
    # The split is drawn from the fit's random state after the weights.
    rng = np.random.RandomState(0)
    for fan_in, fan_out in [(6, 10), (10, 3)]:
        XavierUniform()(fan_in, fan_out, rng)
    _, X_val, _, y_val = train_test_split(
        X, y, test_size=0.25, random_state=rng, stratify=y
    )
    assert X_val.shape[0] == 30
    assert clf.score(X_val, y_val) == clf.best_validation_score_
    assert clf.score(X_val, y_val) > clf.validation_scores_[-1]


def test_training_loss_stops_after_exactly_n_iter_no_change(multiclass_data):
    """Without early stopping, fit stops n_iter_no_change epochs after a gain."""
    X, y = multiclass_data
    clf = MLPClassifier(
        hidden_layer_sizes=(10,),
        tol=1e-2,
        n_iter_no_change=3,
        max_iter=500,
        random_state=0,
    ).fit(X, y)
    last_improved, best = 0, np.inf
    for epoch, loss in enumerate(clf.loss_curve_, start=1):
        if loss < best - clf.tol:
            last_improved = epoch
        best = min(best, loss)
    assert clf.n_iter_ < clf.max_iter
    assert clf.n_iter_ == last_improved + clf.n_iter_no_change
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None
    assert clf.best_validation_score_ is None


def test_adaptive_learning_rate_divides_by_five(multiclass_data):
    """'adaptive' divides the rate by 5 where 'constant' would stop."""
    X, y = multiclass_data
    opt = RecordingNesterov()
    clf = MLPClassifier(
        hidden_layer_sizes=(10,),
        optimizer=opt,
        learning_rate="adaptive",
        tol=1e-2,
        n_iter_no_change=3,
        batch_size=120,
        max_iter=60,
        random_state=0,
    )
    rates = []
    original = opt.update

    def spy(params, grad, buffers, learning_rate):
        rates.append(learning_rate)
        original(params, grad, buffers, learning_rate)

    opt.update = spy
    clf.fit(X, y)
    assert rates[0] == 0.01
    distinct = sorted(set(rates), reverse=True)
    assert len(distinct) >= 2
    assert_allclose(distinct[1:], np.array(distinct[:-1]) / 5.0, rtol=1e-12)


def test_early_stopping_tiny_data_warns(multiclass_data):
    """Too few rows for a validation split: warn and monitor the training loss."""
    X, y = multiclass_data
    clf = MLPClassifier(hidden_layer_sizes=(5,), early_stopping=True, max_iter=5)
    match = "validation split of at least 10 samples"
    # 10% of 12 rows is too few to hold out one row of each of 3 classes.
    with pytest.warns(UserWarning, match="could not stratify"):
        with pytest.warns(UserWarning, match=match) as record:
            clf.fit(X[:12], y[:12])
    _assert_warned_here(record, UserWarning, match)
    assert clf.validation_scores_ is None
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.predict(X[:12]).shape == (12,)


def test_early_stopping_single_member_class_warns(multiclass_data):
    """A class with one row cannot be stratified: warn and split at random."""
    X, y = multiclass_data
    X_small, y_small = X[:60], y[:60].copy()
    y_small[0] = 7
    clf = MLPClassifier(
        hidden_layer_sizes=(5,),
        early_stopping=True,
        validation_fraction=0.2,
        max_iter=5,
        random_state=0,
    )
    with pytest.warns(UserWarning, match="could not stratify") as record:
        clf.fit(X_small, y_small)
    _assert_warned_here(record, UserWarning, "could not stratify")
    assert len(clf.validation_scores_) == clf.n_iter_
    assert list(clf.classes_) == [0, 1, 2, 7]


# Reproducibility and accuracy


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("early_stopping", [False, True])
def test_same_random_state_same_fit(optimizer, early_stopping, multiclass_data):
    """Same data and random_state give bitwise identical weights."""
    X, y = multiclass_data
    params = dict(
        hidden_layer_sizes=(8, 4),
        optimizer=optimizer,
        early_stopping=early_stopping,
        validation_fraction=0.25,
        batch_size=16,
        max_iter=15,
        random_state=7,
    )
    first = MLPClassifier(**params).fit(X, y)
    second = MLPClassifier(**params).fit(X, y)
    _assert_same_weights(first, second)
    assert first.loss_curve_ == second.loss_curve_
    other = MLPClassifier(**{**params, "random_state": 8}).fit(X, y)
    assert not np.array_equal(first.coefs_[0], other.coefs_[0])


def test_random_state_instance_is_not_reused_across_fits(multiclass_data):
    """A RandomState instance advances, so two fits with it differ."""
    X, y = multiclass_data
    clf = MLPClassifier(
        hidden_layer_sizes=(5,), max_iter=3, random_state=np.random.RandomState(0)
    )
    first = _flat(clf.fit(X, y)).copy()
    second = _flat(clf.fit(X, y))
    assert not np.array_equal(first, second)


def test_digits_accuracy_matches_sklearn(digits_split):
    """On digits, sknet's Nesterov SGD is as accurate as scikit-learn's."""
    X_train, X_test, y_train, y_test = digits_split
    common = dict(
        hidden_layer_sizes=(100,),
        momentum=0.9,
        learning_rate_init=0.05,
        batch_size=64,
        max_iter=50,
        random_state=0,
    )
    ours = MLPClassifier(optimizer="nesterov", **common).fit(X_train, y_train)
    theirs = SklearnMLPClassifier(solver="sgd", nesterovs_momentum=True, **common).fit(
        X_train, y_train
    )
    ours_acc = ours.score(X_test, y_test)
    assert ours_acc >= theirs.score(X_test, y_test) - 0.01
    assert ours_acc >= 0.96


# Bad input


@pytest.fixture
def fitted(multiclass_data):
    """A small estimator fitted on the multiclass data."""
    X, y = multiclass_data
    return MLPClassifier(hidden_layer_sizes=(5,), max_iter=10, random_state=0).fit(X, y)


@pytest.mark.parametrize(
    "value, match", [(np.nan, "Input X contains NaN"), (np.inf, "infinity")]
)
def test_fit_non_finite_x_raises(value, match, multiclass_data):
    """NaN or infinity in X is rejected at fit."""
    X, y = multiclass_data
    X = X.copy()
    X[3, 2] = value
    with pytest.raises(ValueError, match=match):
        MLPClassifier().fit(X, y)


def test_predict_non_finite_x_raises(fitted, multiclass_data):
    """NaN in X is rejected at predict."""
    X = multiclass_data[0].copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted.predict(X)


def test_predict_wrong_feature_count_raises(fitted, multiclass_data):
    """X with another number of features is rejected at predict."""
    X = multiclass_data[0]
    with pytest.raises(ValueError, match="X has 5 features, but MLPClassifier"):
        fitted.predict(X[:, :5])
    with pytest.raises(ValueError, match="features"):
        fitted.predict_proba(X[:, :5])


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba"])
def test_predict_before_fit_raises(method, multiclass_data):
    """Predicting with an unfitted estimator raises NotFittedError."""
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(MLPClassifier(), method)(multiclass_data[0])


def test_fit_single_class_raises(multiclass_data):
    """A target with one class is rejected."""
    X, _ = multiclass_data
    with pytest.raises(ValueError, match="at least 2 classes"):
        MLPClassifier().fit(X, np.ones(X.shape[0]))


def test_fit_empty_x_raises():
    """An X without rows is rejected."""
    with pytest.raises(ValueError, match="0 sample"):
        MLPClassifier().fit(np.empty((0, 3)), np.array([]))


def test_partial_fit_unknown_label_raises(multiclass_data):
    """partial_fit rejects labels that were not in the first call's classes."""
    X, y = multiclass_data
    clf = MLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    y_new = y.copy()
    y_new[0] = 5
    with pytest.raises(ValueError, match="has classes not in `self.classes_`"):
        clf.partial_fit(X, y_new)
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 5])


def test_partial_fit_first_call_without_classes_raises(multiclass_data):
    """The first partial_fit call needs classes."""
    X, y = multiclass_data
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(X, y)


def test_partial_fit_first_call_label_outside_classes_raises(multiclass_data):
    """On the first call, y may only hold labels listed in classes."""
    X, y = multiclass_data
    with pytest.raises(ValueError, match="has classes not in `self.classes_`"):
        MLPClassifier().partial_fit(X, y, classes=[0, 1])


@pytest.mark.parametrize(
    "bad, match",
    [(-1.0, "non-negative"), (np.nan, "NaN"), (np.inf, "infinity")],
)
def test_fit_bad_sample_weight_raises(bad, match, multiclass_data):
    """Negative or non-finite sample weights are rejected."""
    X, y = multiclass_data
    sw = np.ones(X.shape[0])
    sw[4] = bad
    with pytest.raises(ValueError, match=match):
        MLPClassifier().fit(X, y, sample_weight=sw)


def test_fit_sample_weight_wrong_length_raises(multiclass_data):
    """sample_weight must have one entry per row."""
    X, y = multiclass_data
    with pytest.raises(ValueError, match=re.escape("sample_weight.shape == (5,)")):
        MLPClassifier().fit(X, y, sample_weight=np.ones(5))


@pytest.mark.parametrize(
    "sizes, match",
    [((0,), "integers > 0"), ((5, -2), "integers > 0"), (("a",), "integers only")],
)
def test_fit_bad_hidden_layer_sizes_raises(sizes, match, multiclass_data):
    """hidden_layer_sizes must hold positive integers."""
    X, y = multiclass_data
    with pytest.raises(ValueError, match=match):
        MLPClassifier(hidden_layer_sizes=sizes).fit(X, y)


@pytest.mark.parametrize(
    "name, value",
    [
        ("learning_rate_init", 0),
        ("learning_rate_init", -0.1),
        ("momentum", 1.5),
        ("batch_size", 0),
        ("validation_fraction", 1.0),
        ("activation", "softmax"),
        ("n_iter_no_change", 0),
    ],
)
def test_fit_bad_parameter_raises(name, value, multiclass_data):
    """Out-of-range parameters raise InvalidParameterError naming them."""
    X, y = multiclass_data
    clf = MLPClassifier(**{name: value})
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        clf.fit(X, y)


def test_warm_start_changed_layer_sizes_raises(fitted, multiclass_data):
    """warm_start with other hidden_layer_sizes cannot continue."""
    X, y = multiclass_data
    before = _flat(fitted).copy()
    fitted.set_params(warm_start=True, hidden_layer_sizes=(6,))
    with pytest.raises(ValueError, match="layer sizes changed"):
        fitted.fit(X, y)
    assert_array_equal(_flat(fitted), before)


def test_batch_size_larger_than_data_warns(multiclass_data):
    """A batch_size above the number of rows is clipped with a warning."""
    X, y = multiclass_data
    clf = MLPClassifier(hidden_layer_sizes=(5,), batch_size=500, max_iter=2)
    with pytest.warns(UserWarning, match="batch_size=500 larger than") as record:
        clf.fit(X, y)
    _assert_warned_here(record, UserWarning, "batch_size=500")
    assert clf.t_ == 2 * X.shape[0]


# Divergence


@ignore_overflow
def test_fit_divergence_raises_and_leaves_unfitted(multiclass_data):
    """Exploding training raises a ValueError about the learning rate."""
    X, y = multiclass_data
    clf = MLPClassifier(learning_rate_init=1e6, random_state=0)
    with pytest.raises(ValueError, match="learning rate"):
        clf.fit(X * 1e200, y)
    assert not hasattr(clf, "coefs_")
    with pytest.raises(NotFittedError, match="not fitted yet"):
        clf.predict(X)


@ignore_overflow
def test_partial_fit_divergence_restores_previous_state(fitted, multiclass_data):
    """A diverging partial_fit leaves the fitted weights and counters as they were."""
    X, y = multiclass_data
    coefs = [c.copy() for c in fitted.coefs_ + fitted.intercepts_]
    state = (fitted.n_iter_, fitted.t_, fitted.loss_, list(fitted.loss_curve_))
    proba = fitted.predict_proba(X)
    opt = RecordingNesterov()
    fitted.set_params(optimizer=opt, batch_size=10)
    with pytest.raises(ValueError, match="learning rate"):
        fitted.partial_fit(X * 1e200, y)
    # At least one update ran before the loss became infinite.
    assert len(opt.history) >= 1
    for now, before in zip(fitted.coefs_ + fitted.intercepts_, coefs):
        assert np.all(np.isfinite(now))
        assert_array_equal(now, before)
    assert (fitted.n_iter_, fitted.t_, fitted.loss_, fitted.loss_curve_) == state
    assert_array_equal(fitted.predict_proba(X), proba)


@ignore_overflow
def test_warm_start_fit_divergence_restores_previous_state(fitted, multiclass_data):
    """A diverging warm-started fit leaves the previous model in place."""
    X, y = multiclass_data
    before = _flat(fitted).copy()
    fitted.set_params(warm_start=True, learning_rate_init=1e6)
    with pytest.raises(ValueError, match="learning rate"):
        fitted.fit(X * 1e200, y)
    assert_array_equal(_flat(fitted), before)
    assert fitted.predict(X).shape == (X.shape[0],)


@ignore_overflow
def test_refit_divergence_returns_to_state_before_call(fitted, multiclass_data):
    """A diverging refit leaves the previous model, as the docstring promises."""
    X, y = multiclass_data
    before = _flat(fitted).copy()
    prediction = fitted.predict(X)
    fitted.set_params(learning_rate_init=1e6)
    with pytest.raises(ValueError, match="learning rate"):
        fitted.fit(X * 1e200, y)
    assert hasattr(fitted, "coefs_")
    assert_array_equal(_flat(fitted), before)
    assert_array_equal(fitted.predict(X), prediction)


# Sample weights


def test_zero_sample_weight_equals_dropping_rows(multiclass_data):
    """Rows of weight 0 change nothing: same fit as without them."""
    X, y = multiclass_data
    params = dict(hidden_layer_sizes=(5,), max_iter=30, shuffle=False, random_state=0)
    sw = np.ones(X.shape[0])
    sw[[0, 7, 50, 51]] = 0.0
    keep = sw > 0
    weighted = MLPClassifier(**params).fit(X, y, sample_weight=sw)
    dropped = MLPClassifier(**params).fit(X[keep], y[keep])
    assert_allclose(weighted.predict_proba(X), dropped.predict_proba(X), rtol=1e-10)


def test_integer_sample_weight_equals_repeating_rows(multiclass_data):
    """A row of weight 2 counts as that row twice in a full batch."""
    X, y = multiclass_data
    params = dict(hidden_layer_sizes=(5,), max_iter=30, shuffle=False, random_state=0)
    sw = np.ones(X.shape[0])
    sw[:5] = 2.0
    weighted = MLPClassifier(**params).fit(X, y, sample_weight=sw)
    repeated = MLPClassifier(**params).fit(
        np.vstack([X, X[:5]]), np.concatenate([y, y[:5]])
    )
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-10)
    unweighted = MLPClassifier(**params).fit(X, y)
    assert not np.allclose(weighted.predict_proba(X), unweighted.predict_proba(X))


def test_all_zero_weight_batch_makes_no_step(multiclass_data):
    """A batch whose weights are all zero is skipped without error."""
    X, y = multiclass_data
    params = dict(
        hidden_layer_sizes=(5,),
        batch_size=10,
        max_iter=5,
        shuffle=False,
        random_state=0,
    )
    sw = np.ones(X.shape[0])
    sw[:10] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        weighted = MLPClassifier(**params).fit(X, y, sample_weight=sw)
    assert np.all(np.isfinite(_flat(weighted)))
    assert np.all(np.isfinite(weighted.loss_curve_))
    rest = MLPClassifier(**params).fit(X[10:], y[10:])
    assert_allclose(_flat(weighted), _flat(rest), rtol=1e-12, atol=1e-15)


def test_inputs_are_not_modified(multiclass_data):
    """fit, partial_fit and predict work on read-only inputs and keep them."""
    X, y = multiclass_data
    X32 = X.astype(np.float32)
    sw = np.linspace(0.5, 2.0, X.shape[0])
    copies = [a.copy() for a in (X, X32, y, sw)]
    for array in (X32, sw):
        array.setflags(write=False)
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    clf.fit(X, y, sample_weight=sw)
    clf.partial_fit(X, y, sample_weight=sw)
    clf.predict(X)
    clf.predict_proba(X)
    clf32 = clone(clf).set_params(early_stopping=True).fit(X32, y, sample_weight=sw)
    clf32.predict(X32)
    for array, copy in zip((X, X32, y, sw), copies):
        assert not array.flags.writeable
        assert_array_equal(array, copy)


# Targets and outputs


@pytest.mark.parametrize(
    "labels",
    [
        np.array([0, 1]),
        np.array([-1, 1]),
        np.array(["no", "yes"]),
        np.array([3, 7, 9]),
        np.array(["cat", "dog", "emu"]),
        np.array([1.0, 2.0, 3.0]),
    ],
    ids=["binary01", "binary-pm", "binary-str", "int3", "str3", "float3"],
)
def test_predict_label_types_and_shapes(labels, multiclass_data, binary_data):
    """predict returns the training labels' type; probabilities are consistent."""
    X, codes = binary_data if len(labels) == 2 else multiclass_data
    y = labels[codes]
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0)
    clf.fit(X, y)
    assert_array_equal(clf.classes_, np.sort(labels))
    pred = clf.predict(X)
    assert pred.shape == (X.shape[0],)
    assert pred.dtype == y.dtype
    assert set(pred) <= set(labels)
    assert clf.score(X, y) > 0.7
    proba = clf.predict_proba(X)
    assert proba.shape == (X.shape[0], len(labels))
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    assert_allclose(clf.predict_log_proba(X), np.log(proba), rtol=1e-12)
    expected_out = "logistic" if len(labels) == 2 else "softmax"
    assert clf.out_activation_ == expected_out
    assert clf.n_outputs_ == (1 if len(labels) == 2 else len(labels))


def test_multilabel_predict_and_proba(multilabel_data):
    """Multilabel targets give indicator predictions and per-label probabilities."""
    X, Y = multilabel_data
    clf = MLPClassifier(
        hidden_layer_sizes=(10,), learning_rate_init=0.05, max_iter=200, random_state=0
    )
    clf.fit(X, Y)
    assert clf.out_activation_ == "logistic"
    assert clf.n_outputs_ == 3
    assert_array_equal(clf.classes_, [0, 1, 2])
    pred = clf.predict(X)
    assert pred.shape == Y.shape
    assert set(np.unique(pred)) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape
    assert np.all((proba > 0) & (proba < 1))
    assert not np.allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(pred, (proba > 0.5).astype(int))
    assert_allclose(clf.predict_log_proba(X), np.log(proba), rtol=1e-12)
    # Exact-match accuracy; predicting each label's majority value gives 0.27.
    assert clf.score(X, Y) > 0.45


def test_column_vector_target_is_raveled(binary_data):
    """A (n, 1) target is treated as a 1-d label vector, with a warning."""
    X, y = binary_data
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    with pytest.warns(Warning, match="column-vector y was passed"):
        clf.fit(X, y.reshape(-1, 1))
    assert clf.predict(X).shape == (X.shape[0],)


# Dtypes and sparse input


@pytest.mark.parametrize(
    "dtype, expected",
    [(np.float32, np.float32), (np.float64, np.float64), (np.int64, np.float64)],
)
@pytest.mark.parametrize("target", ["binary", "multiclass", "multilabel"])
def test_fit_dtype(
    dtype, expected, target, binary_data, multiclass_data, multilabel_data
):
    """float32 trains in float32; float64 and integer X in float64."""
    data = {
        "binary": binary_data,
        "multiclass": multiclass_data,
        "multilabel": multilabel_data,
    }
    X, y = data[target]
    X = (X * 4).astype(dtype)
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    clf.fit(X, y)
    for array in clf.coefs_ + clf.intercepts_:
        assert array.dtype == expected
    assert clf.predict_proba(X).dtype == expected
    assert clf.predict_log_proba(X).dtype == expected
    assert np.all(np.isfinite(clf.predict_proba(X)))


def test_float32_fit_close_to_float64(multiclass_data):
    """The float32 fit follows the float64 one closely."""
    X, y = multiclass_data
    params = dict(hidden_layer_sizes=(5,), max_iter=10, random_state=0)
    fit64 = MLPClassifier(**params).fit(X, y)
    fit32 = MLPClassifier(**params).fit(X.astype(np.float32), y)
    assert_allclose(fit32.predict_proba(X), fit64.predict_proba(X), atol=1e-3)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_matches_dense(fmt, multiclass_data):
    """CSR and CSC input train and predict as the dense array does."""
    X, y = multiclass_data
    X = X.copy()
    X[np.abs(X) < 0.5] = 0.0
    X_sparse = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    params = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    dense = MLPClassifier(**params).fit(X, y)
    sparse = MLPClassifier(**params).fit(X_sparse, y)
    assert_allclose(_flat(sparse), _flat(dense), rtol=1e-9, atol=1e-12)
    assert_allclose(sparse.predict_proba(X_sparse), dense.predict_proba(X), rtol=1e-9)
    assert_array_equal(sparse.predict(X_sparse), dense.predict(X))


def test_sparse_early_stopping_fits(multiclass_data):
    """Sparse input works with an early-stopping validation split."""
    X, y = multiclass_data
    clf = MLPClassifier(
        hidden_layer_sizes=(8,),
        early_stopping=True,
        validation_fraction=0.25,
        max_iter=10,
        random_state=0,
    ).fit(sp.csr_matrix(X), y)
    assert len(clf.validation_scores_) == clf.n_iter_


# Reporting


def test_max_iter_reached_warns(multiclass_data):
    """Hitting max_iter raises a ConvergenceWarning."""
    X, y = multiclass_data
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, tol=0)
    match = r"maximum iterations \(3\) reached"
    with pytest.warns(ConvergenceWarning, match=match) as record:
        clf.fit(X, y)
    _assert_warned_here(record, ConvergenceWarning, match)
    assert clf.n_iter_ == 3


def test_converged_fit_does_not_warn(multiclass_data):
    """A fit stopped by the stopping rule raises no ConvergenceWarning."""
    X, y = multiclass_data
    clf = MLPClassifier(hidden_layer_sizes=(5,), tol=10.0, n_iter_no_change=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.n_iter_ == 3


def test_verbose_prints_one_line_per_epoch(multiclass_data, capsys):
    """verbose prints an 'Epoch' line for every epoch."""
    X, y = multiclass_data
    MLPClassifier(hidden_layer_sizes=(5,), max_iter=4, tol=0, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    epochs = [line for line in lines if line.startswith("Epoch")]
    assert len(epochs) == 4
    assert epochs[0].startswith("Epoch 1, loss = ")
    assert not any("validation score" in line for line in epochs)


def test_verbose_early_stopping_prints_validation_score(multiclass_data, capsys):
    """With early stopping, each epoch line reports the validation score."""
    X, y = multiclass_data
    clf = MLPClassifier(
        hidden_layer_sizes=(5,),
        max_iter=4,
        tol=0,
        verbose=1,
        early_stopping=True,
        validation_fraction=0.25,
    ).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    epochs = [line for line in lines if line.startswith("Epoch")]
    assert len(epochs) == clf.n_iter_ == 4
    assert all("validation score" in line for line in epochs)


def test_not_verbose_prints_nothing(multiclass_data, capsys):
    """verbose=False prints nothing."""
    X, y = multiclass_data
    MLPClassifier(hidden_layer_sizes=(5,), max_iter=3).fit(X, y)
    assert capsys.readouterr().out == ""


# Ctrl-C


class InterruptingNesterov(Nesterov):
    """Nesterov that sends SIGINT to its own process on chosen calls."""

    def __init__(self, momentum=0.9, at=(5,)):
        self.momentum = momentum
        self.at = at

    def update(self, params, grad, buffers, learning_rate):
        super().update(params, grad, buffers, learning_rate)
        self.n_calls = getattr(self, "n_calls", 0) + 1
        if self.n_calls in self.at:
            self.snapshot = params.copy()
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_stops_after_step_and_keeps_weights(multiclass_data):
    """SIGINT during fit ends it after the step, keeping that step's weights."""
    X, y = multiclass_data
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    opt = InterruptingNesterov(at=(5,))
    clf = MLPClassifier(
        hidden_layer_sizes=(5,), optimizer=opt, batch_size=10, max_iter=3
    )
    with pytest.warns(UserWarning, match="interrupted") as record:
        clf.fit(X, y)
    _assert_warned_here(record, UserWarning, "interrupted")
    assert opt.n_calls == 5
    assert np.all(np.isfinite(_flat(clf)))
    assert_array_equal(_flat(clf), opt.snapshot)
    assert clf.t_ == 50
    assert clf.predict(X).shape == (X.shape[0],)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_in_first_epoch_with_early_stopping_keeps_step_weights(
    multiclass_data,
):
    """With early stopping, Ctrl-C keeps the last step's weights, as it warns."""
    X, y = multiclass_data
    opt = InterruptingNesterov(at=(5,))
    clf = MLPClassifier(
        hidden_layer_sizes=(5,),
        optimizer=opt,
        batch_size=10,
        max_iter=3,
        early_stopping=True,
        validation_fraction=0.25,
        random_state=0,
    )
    match = "keeping the weights of the last finished step"
    with pytest.warns(UserWarning, match=match):
        clf.fit(X, y)
    # 90 training rows in batches of 10: the 5th step is in the first epoch.
    assert opt.n_calls == 5
    assert_array_equal(_flat(clf), opt.snapshot)


def test_second_ctrl_c_raises_keyboard_interrupt(multiclass_data):
    """A second SIGINT raises KeyboardInterrupt at once and restores handlers."""
    X, y = multiclass_data
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    class TwiceInterrupting(InterruptingNesterov):
        def update(self, params, grad, buffers, learning_rate):
            super().update(params, grad, buffers, learning_rate)
            if self.n_calls == 3:
                os.kill(os.getpid(), signal.SIGINT)

    opt = TwiceInterrupting(at=(3,))
    clf = MLPClassifier(
        hidden_layer_sizes=(5,), optimizer=opt, batch_size=10, max_iter=3
    )
    with pytest.raises(KeyboardInterrupt, match=r"^$"):
        clf.fit(X, y)
    assert opt.n_calls == 3
    assert not hasattr(clf, "coefs_")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_fit_in_worker_thread(multiclass_data):
    """fit works outside the main thread, where no SIGINT handler can be set."""
    X, y = multiclass_data
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    errors = []

    def run():
        try:
            clf.fit(X, y)
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert errors == []
    assert clf.n_iter_ == 5
    reference = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    _assert_same_weights(clf, reference.fit(X, y))


# Warm start and partial_fit


def test_warm_start_continues_from_previous_weights(multiclass_data):
    """A warm-started fit starts at the loss where the previous fit ended."""
    X, y = multiclass_data
    params = dict(hidden_layer_sizes=(8,), max_iter=20, tol=0, random_state=0)
    cold = MLPClassifier(**params).fit(X, y)
    warm = MLPClassifier(**params).fit(X, y)
    warm.set_params(warm_start=True, max_iter=5)
    warm.fit(X, y)
    assert warm.n_iter_ == 5
    assert len(warm.loss_curve_) == 25
    assert warm.loss_curve_[20] < cold.loss_curve_[0]
    assert warm.loss_curve_[20] < cold.loss_curve_[10]
    assert warm.t_ == 25 * X.shape[0]


def test_fit_without_warm_start_restarts(multiclass_data):
    """Without warm_start, a second fit starts again from new weights."""
    X, y = multiclass_data
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, tol=0, random_state=0)
    first_curve = list(clf.fit(X, y).loss_curve_)
    clf.set_params(max_iter=5)
    clf.fit(X, y)
    assert clf.loss_curve_ == first_curve[:5]
    assert clf.t_ == 5 * X.shape[0]


def test_partial_fit_repeated_counts_and_keeps_classes(multiclass_data):
    """Each partial_fit call is one epoch; t_ grows and classes_ stay."""
    X, y = multiclass_data
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    half = X.shape[0] // 2
    clf.partial_fit(X[:half], y[:half], classes=np.array([0, 1, 2]))
    losses = [clf.loss_]
    for k in range(1, 6):
        subset = y == (k % 2)
        clf.partial_fit(X[subset], y[subset])
        assert_array_equal(clf.classes_, [0, 1, 2])
        losses.append(clf.loss_)
    assert clf.n_iter_ == 6
    assert clf.t_ == half + sum(int((y == (k % 2)).sum()) for k in range(1, 6))
    assert len(clf.loss_curve_) == 6
    assert clf.predict_proba(X).shape == (X.shape[0], 3)


def test_partial_fit_lowers_loss(multiclass_data):
    """Repeated partial_fit calls on the same data reduce the loss."""
    X, y = multiclass_data
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    for _ in range(30):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert clf.loss_curve_[-1] < 0.7 * clf.loss_curve_[0]


def test_partial_fit_with_early_stopping_trains_on_all_rows(multiclass_data):
    """partial_fit ignores early_stopping and trains on every row it gets."""
    X, y = multiclass_data
    clf = MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.partial_fit(X, y, classes=[0, 1, 2])
        clf.partial_fit(X, y)
    assert clf.t_ == 2 * X.shape[0]
    assert clf.validation_scores_ is None


def test_partial_fit_after_early_stopped_fit(multiclass_data):
    """partial_fit continues a fit that monitored a validation score."""
    X, y = multiclass_data
    clf = MLPClassifier(
        hidden_layer_sizes=(8,),
        early_stopping=True,
        validation_fraction=0.25,
        max_iter=10,
        random_state=0,
    ).fit(X, y)
    t_before, n_before = clf.t_, clf.n_iter_
    clf.partial_fit(X, y)
    assert clf.t_ == t_before + X.shape[0]
    assert clf.n_iter_ == n_before + 1
    assert np.isfinite(clf.best_loss_)


# Persistence and meta-estimators


def test_pickle_round_trip_predicts_and_continues(fitted, multiclass_data):
    """An unpickled estimator predicts identically and trains on identically."""
    X, y = multiclass_data
    restored = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    assert_array_equal(restored.predict(X), fitted.predict(X))
    fitted.partial_fit(X, y)
    restored.partial_fit(X, y)
    _assert_same_weights(restored, fitted)
    assert restored.t_ == fitted.t_


def test_clone_of_fitted_is_unfitted(fitted):
    """clone keeps the parameters and drops the fitted state."""
    cloned = clone(fitted)
    assert cloned.get_params() == fitted.get_params()
    assert not hasattr(cloned, "coefs_")


def test_grid_search_over_optimizer_and_initializer(multiclass_data):
    """GridSearchCV over a pipeline tries every optimizer/initializer pair."""
    X, y = multiclass_data
    pipe = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=10, random_state=0),
    )
    grid = {
        "mlpclassifier__optimizer": ["sgd", "nesterov", Nesterov(momentum=0.5)],
        "mlpclassifier__initializer": ["he_normal", "random"],
    }
    search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    assert len(search.cv_results_["params"]) == 6
    best = search.best_params_
    assert best["mlpclassifier__initializer"] in grid["mlpclassifier__initializer"]
    assert best["mlpclassifier__optimizer"] in grid["mlpclassifier__optimizer"]
    assert search.best_score_ > 0.5
    assert search.predict(X).shape == (X.shape[0],)


def test_ctrl_c_ignored_by_the_program_stays_ignored(multiclass_data):
    """A program that ignores SIGINT keeps ignoring it during fit."""
    X, y = multiclass_data
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        clf = MLPClassifier(
            (8,),
            optimizer=InterruptingNesterov(at=(5,)),
            max_iter=4,
            tol=0.0,
            n_iter_no_change=np.inf,
            random_state=0,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            clf.fit(X, y)
        assert not [w for w in caught if "interrupted" in str(w.message)]
        assert clf.n_iter_ == 4
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_finite_divergence_warns_naming_the_learning_rate(digits_split):
    """A loss that ends huge but finite gives a ConvergenceWarning, not silence."""
    X_train, _, y_train, _ = digits_split
    clf = MLPClassifier(learning_rate_init=50.0, max_iter=20, random_state=0)
    with pytest.warns(ConvergenceWarning, match="learning_rate_init=50.0"):
        clf.fit(X_train, y_train)
    assert clf.loss_ > 10 * np.log(10)


def test_converging_fit_does_not_warn_of_divergence(digits_split):
    """A healthy fit ends below a constant guess's loss and does not warn."""
    X_train, _, y_train, _ = digits_split
    clf = MLPClassifier(learning_rate_init=0.05, max_iter=60, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(X_train, y_train)
    assert not [w for w in caught if "constant guess" in str(w.message)]
