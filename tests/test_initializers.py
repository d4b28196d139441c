"""Tests of the weight initializers and of their use by MLPClassifier."""

import pickle
import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from sknet import MLPClassifier
from sknet.initializers import (
    INITIALIZERS,
    BaseInitializer,
    HeNormal,
    HeUniform,
    LeCunNormal,
    LeCunUniform,
    RandomUniform,
    XavierNormal,
    XavierUniform,
)

FAN_IN, FAN_OUT = 500, 400
N_DRAWS = FAN_IN * FAN_OUT
# How many standard errors a sample statistic may stray from its expectation.
N_SE = 6.0

EXPECTED = {
    "xavier_normal": (XavierNormal, "normal", 2.0 / (FAN_IN + FAN_OUT)),
    "xavier_uniform": (XavierUniform, "uniform", 2.0 / (FAN_IN + FAN_OUT)),
    "lecun_normal": (LeCunNormal, "normal", 1.0 / FAN_IN),
    "lecun_uniform": (LeCunUniform, "uniform", 1.0 / FAN_IN),
    "he_normal": (HeNormal, "normal", 2.0 / FAN_IN),
    "he_uniform": (HeUniform, "uniform", 2.0 / FAN_IN),
    "random": (RandomUniform, "uniform", 0.5**2 / 3.0),
}


def _variance_standard_error(variance, distribution):
    """Standard error of the sample variance of N_DRAWS independent draws."""
    kurtosis = 3.0 if distribution == "normal" else 1.8
    return variance * np.sqrt((kurtosis - 1.0) / N_DRAWS)


def _fit_quietly(clf, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(X, y, **kwargs)


def test_initializers_registry_is_complete():
    """INITIALIZERS maps the documented names to the documented classes."""
    assert {name: cls for name, (cls, _, _) in EXPECTED.items()} == INITIALIZERS


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_initializer_mean_and_variance_match_documentation(name):
    """Each named initializer draws with mean 0 and the documented variance."""
    cls, distribution, variance = EXPECTED[name]
    W = INITIALIZERS[name]()(FAN_IN, FAN_OUT, np.random.RandomState(0))
    assert W.shape == (FAN_IN, FAN_OUT)
    assert W.dtype == np.float64

    mean_tol = N_SE * np.sqrt(variance / N_DRAWS)
    var_tol = N_SE * _variance_standard_error(variance, distribution)
    # The tolerance tells the documented variance from every other one.
    for _, _, other in EXPECTED.values():
        if not np.isclose(other, variance):
            assert abs(other - variance) > 2 * var_tol
    assert abs(W.mean()) < mean_tol
    assert abs(W.var() - variance) < var_tol


@pytest.mark.parametrize(
    "name", [n for n, (_, dist, _) in sorted(EXPECTED.items()) if dist == "uniform"]
)
def test_uniform_initializer_respects_bound(name):
    """Uniform initializers stay within, and reach close to, sqrt(3 * var)."""
    _, _, variance = EXPECTED[name]
    bound = np.sqrt(3.0 * variance)
    W = INITIALIZERS[name]()(FAN_IN, FAN_OUT, np.random.RandomState(1))
    assert np.abs(W).max() <= bound
    assert np.abs(W).max() > 0.999 * bound


@pytest.mark.parametrize(
    "name", [n for n, (_, dist, _) in sorted(EXPECTED.items()) if dist == "normal"]
)
def test_normal_initializer_has_normal_tails(name):
    """Normal initializers exceed sqrt(3 * var) about 8.3% of the time."""
    _, _, variance = EXPECTED[name]
    W = INITIALIZERS[name]()(FAN_IN, FAN_OUT, np.random.RandomState(2))
    share = np.mean(np.abs(W) > np.sqrt(3.0 * variance))
    assert abs(share - 0.0833) < 0.005


@pytest.mark.parametrize("cls", [XavierNormal, LeCunUniform, HeNormal])
def test_initializer_gain_scales_standard_deviation(cls):
    """gain=2 multiplies every draw by two under the same random state."""
    base = cls()(30, 20, np.random.RandomState(3))
    doubled = cls(gain=2.0)(30, 20, np.random.RandomState(3))
    assert_allclose(doubled, 2.0 * base, rtol=1e-15)


@pytest.mark.parametrize("gain", [0.0, -1.0, "big"])
def test_initializer_invalid_gain_raises(gain):
    """A gain that is not a positive float is rejected when drawing."""
    with pytest.raises(ValueError, match="'gain' parameter of XavierUniform"):
        XavierUniform(gain=gain)(3, 4, np.random.RandomState(0))


def test_random_uniform_invalid_scale_raises():
    """RandomUniform rejects a non-positive scale."""
    with pytest.raises(ValueError, match="'scale' parameter of RandomUniform"):
        RandomUniform(scale=0)(3, 4, np.random.RandomState(0))


def test_random_uniform_scale_sets_bound():
    """RandomUniform(scale=s) draws within [-s, s]."""
    W = RandomUniform(scale=0.1)(200, 100, np.random.RandomState(0))
    assert np.abs(W).max() <= 0.1
    assert np.abs(W).max() > 0.099


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_initializer_same_seed_same_weights(name):
    """The same seed gives identical draws and another seed different ones."""
    init = INITIALIZERS[name]()
    first = init(20, 10, np.random.RandomState(5))
    again = init(20, 10, np.random.RandomState(5))
    other = init(20, 10, np.random.RandomState(6))
    assert_array_equal(first, again)
    assert not np.any(first == other)


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_mlp_initializer_same_random_state_same_coefs(name, multiclass_data):
    """Two fits with the same initializer and random_state agree exactly."""
    X, y = multiclass_data
    params = dict(hidden_layer_sizes=(8,), initializer=name, max_iter=5, random_state=0)
    first = _fit_quietly(MLPClassifier(**params), X, y)
    second = _fit_quietly(MLPClassifier(**params), X, y)
    for a, b in zip(
        first.coefs_ + first.intercepts_, second.coefs_ + second.intercepts_
    ):
        assert_array_equal(a, b)
    third = _fit_quietly(MLPClassifier(**{**params, "random_state": 1}), X, y)
    assert not np.array_equal(first.coefs_[0], third.coefs_[0])


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_mlp_initializer_name_draws_from_fit_random_state(name, multiclass_data):
    """A named initializer draws each layer in order from RandomState(seed)."""
    X, y = multiclass_data
    clf = MLPClassifier(
        hidden_layer_sizes=(7, 5),
        initializer=name,
        learning_rate_init=1e-12,
        max_iter=1,
        shuffle=False,
        random_state=3,
    )
    _fit_quietly(clf, X, y)
    rng = np.random.RandomState(3)
    init = INITIALIZERS[name]()
    for coef, shape in zip(clf.coefs_, [(6, 7), (7, 5), (5, 3)]):
        assert_allclose(coef, init(*shape, rng), rtol=0, atol=1e-9)


class RecordingInitializer:
    """A plain callable that records its calls and returns fixed weights."""

    def __init__(self):
        self.calls = []
        self.returned = []

    def __call__(self, fan_in, fan_out, rng):
        self.calls.append((fan_in, fan_out, type(rng)))
        W = np.linspace(-0.5, 0.5, fan_in * fan_out).reshape(fan_in, fan_out)
        self.returned.append(W)
        return W


def test_mlp_callable_initializer_called_with_fans(multiclass_data):
    """A callable gets each layer's (fan_in, fan_out, rng) and its weights are used."""
    X, y = multiclass_data
    init = RecordingInitializer()
    clf = MLPClassifier(
        hidden_layer_sizes=(7, 5),
        initializer=init,
        learning_rate_init=1e-12,
        max_iter=1,
        random_state=0,
    )
    _fit_quietly(clf, X, y)
    rs = np.random.RandomState
    assert init.calls == [(6, 7, rs), (7, 5, rs), (5, 3, rs)]
    for coef, W in zip(clf.coefs_, init.returned):
        assert_allclose(coef, W, rtol=0, atol=1e-9)
    for intercept in clf.intercepts_:
        assert_allclose(intercept, 0.0, rtol=0, atol=1e-9)


def test_mlp_callable_initializer_wrong_shape_raises(multiclass_data):
    """A callable that returns a transposed array is rejected, naming the shape."""
    X, y = multiclass_data
    clf = MLPClassifier(
        hidden_layer_sizes=(7,),
        initializer=lambda fan_in, fan_out, rng: np.zeros((fan_out, fan_in)),
    )
    expected = re.escape("(fan_in, fan_out) = (6, 7). Got shape (7, 6)")
    with pytest.raises(ValueError, match=expected):
        clf.fit(X, y)
    assert not hasattr(clf, "coefs_")


def test_mlp_callable_initializer_nan_raises(multiclass_data):
    """A callable that returns NaN weights is rejected."""
    X, y = multiclass_data
    clf = MLPClassifier(
        hidden_layer_sizes=(7,),
        initializer=lambda fan_in, fan_out, rng: np.full((fan_in, fan_out), np.nan),
    )
    with pytest.raises(ValueError, match="not all finite numbers"):
        clf.fit(X, y)


def test_mlp_unknown_initializer_name_raises(multiclass_data):
    """An unknown initializer name is a parameter error naming 'initializer'."""
    X, y = multiclass_data
    clf = MLPClassifier(initializer="glorot")
    with pytest.raises(InvalidParameterError, match="'initializer' parameter"):
        clf.fit(X, y)
    assert issubclass(InvalidParameterError, ValueError)


def test_initializer_survives_clone():
    """clone copies an initializer object with its parameters."""
    clf = MLPClassifier(initializer=XavierNormal(gain=1.5))
    cloned = clone(clf)
    assert isinstance(cloned.initializer, XavierNormal)
    assert cloned.initializer is not clf.initializer
    assert cloned.initializer.get_params() == {"gain": 1.5}


def test_initializer_nested_get_and_set_params():
    """initializer__gain is visible in get_params and settable by set_params."""
    clf = MLPClassifier(initializer=XavierNormal())
    assert clf.get_params()["initializer__gain"] == 1.0
    clf.set_params(initializer__gain=2.0)
    assert clf.initializer.gain == 2.0
    assert clf.get_params()["initializer__gain"] == 2.0


@pytest.mark.parametrize("cls", [XavierNormal, HeUniform, RandomUniform])
def test_initializer_pickle_round_trip(cls):
    """A pickled initializer keeps its parameters and draws the same weights."""
    init = cls(**({"scale": 0.3} if cls is RandomUniform else {"gain": 0.7}))
    restored = pickle.loads(pickle.dumps(init))
    assert type(restored) is cls
    assert restored.get_params() == init.get_params()
    assert_array_equal(
        restored(5, 4, np.random.RandomState(0)),
        init(5, 4, np.random.RandomState(0)),
    )


def test_mlp_initializer_object_not_mutated_by_fit(multiclass_data):
    """Fitting leaves the initializer object's parameters as they were."""
    X, y = multiclass_data
    init = HeUniform(gain=0.8)
    clf = MLPClassifier(hidden_layer_sizes=(5,), initializer=init, max_iter=3)
    _fit_quietly(clf, X, y)
    assert clf.initializer is init
    assert init.get_params() == {"gain": 0.8}


def test_base_initializer_call_not_implemented():
    """BaseInitializer itself cannot draw weights."""
    with pytest.raises(NotImplementedError, match="must implement __call__"):
        BaseInitializer()(2, 2, np.random.RandomState(0))


def test_mlp_custom_base_initializer_subclass(multiclass_data):
    """A BaseInitializer subclass is accepted and clones with its parameters."""

    class Constant(BaseInitializer):
        def __init__(self, value=0.01):
            self.value = value

        def __call__(self, fan_in, fan_out, rng):
            return np.full((fan_in, fan_out), self.value)

    X, y = multiclass_data
    clf = MLPClassifier(
        hidden_layer_sizes=(4,),
        initializer=Constant(0.25),
        learning_rate_init=1e-12,
        max_iter=1,
    )
    _fit_quietly(clf, X, y)
    assert_allclose(clf.coefs_[0], 0.25, rtol=0, atol=1e-9)
    assert clone(clf).initializer.value == 0.25
