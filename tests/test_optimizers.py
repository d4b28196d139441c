"""Tests of the update rules and of their use by MLPClassifier."""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from sknet import MLPClassifier
from sknet.optimizers import OPTIMIZERS, SGD, BaseOptimizer, Momentum, Nesterov

P0 = np.array([1.0, -2.0, 0.5, 3.0])
G0 = np.array([0.4, -1.0, 2.0, 0.0])
V0 = np.array([0.1, 0.3, -0.2, 0.05])
LR = 0.1
M = 0.9


def _fit_quietly(clf, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(X, y, **kwargs)


def test_optimizers_registry_is_complete():
    """OPTIMIZERS maps the documented names to the documented classes."""
    assert OPTIMIZERS == {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov}


def test_sgd_update_matches_formula():
    """SGD moves p to p - lr * g."""
    p = P0.copy()
    SGD().update(p, G0.copy(), [], LR)
    assert_allclose(p, P0 - LR * G0, rtol=1e-15)


def test_momentum_update_matches_formula():
    """Momentum: v' = m v - lr g, p' = p + v'."""
    p, v = P0.copy(), V0.copy()
    Momentum(momentum=M).update(p, G0.copy(), [v], LR)
    v_new = M * V0 - LR * G0
    assert_allclose(v, v_new, rtol=1e-15)
    assert_allclose(p, P0 + v_new, rtol=1e-15)


def test_nesterov_update_matches_formula():
    """Nesterov (update-time form): v' = m v - lr g, p' = p + m v' - lr g."""
    p, v = P0.copy(), V0.copy()
    Nesterov(momentum=M).update(p, G0.copy(), [v], LR)
    v_new = M * V0 - LR * G0
    assert_allclose(v, v_new, rtol=1e-15)
    assert_allclose(p, P0 + M * v_new - LR * G0, rtol=1e-15, atol=1e-16)


def test_momentum_zero_equals_sgd():
    """Momentum and Nesterov with momentum 0 take the plain SGD step."""
    p_sgd = P0.copy()
    SGD().update(p_sgd, G0.copy(), [], LR)
    for cls in (Momentum, Nesterov):
        p, v = P0.copy(), np.zeros_like(P0)
        cls(momentum=0.0).update(p, G0.copy(), [v], LR)
        assert_array_equal(p, p_sgd)


@pytest.mark.parametrize("cls", [Momentum, Nesterov])
@pytest.mark.parametrize("momentum", [-0.1, 1.5, "high"])
def test_optimizer_invalid_momentum_raises(cls, momentum):
    """A momentum outside [0, 1] is rejected when updating."""
    p, v = P0.copy(), V0.copy()
    with pytest.raises(ValueError, match="'momentum' parameter of"):
        cls(momentum=momentum).update(p, G0.copy(), [v], LR)


def test_nesterov_update_form_equals_look_ahead_form():
    """Tracking y = x + m v, the update-time form gives the look-ahead points."""
    rng = np.random.RandomState(0)
    B = rng.normal(size=(5, 5))
    A = B @ B.T + 0.5 * np.eye(5)
    lr = 0.5 / np.linalg.eigvalsh(A).max()
    x0 = rng.normal(size=5)

    # Look-ahead form: v' = m v - lr * grad(x + m v), x' = x + v'.
    x, v = x0.copy(), np.zeros(5)
    look_ahead_points = []
    for _ in range(30):
        v = M * v - lr * (A @ (x + M * v))
        x = x + v
        look_ahead_points.append(x + M * v)

    # Update-time form on y = x + m v, with the gradient taken at y.
    y, w = x0.copy(), np.zeros(5)
    tracked = []
    opt = Nesterov(momentum=M)
    for _ in range(30):
        opt.update(y, A @ y, [w], lr)
        tracked.append(y.copy())

    assert np.linalg.norm(look_ahead_points[-1]) < 0.5 * np.linalg.norm(x0)
    assert_allclose(tracked, look_ahead_points, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_update_is_element_wise(name):
    """Updating two halves of the arrays is bitwise the same as the whole."""
    rng = np.random.RandomState(1)
    n = 101
    params = rng.normal(size=n)
    grad = rng.normal(size=n)
    opt = OPTIMIZERS[name]()
    buffers = [rng.normal(size=n) for _ in range(opt.n_buffers)]

    p_whole, g_whole = params.copy(), grad.copy()
    b_whole = [b.copy() for b in buffers]
    p_split, g_split = params.copy(), grad.copy()
    b_split = [b.copy() for b in buffers]
    for _ in range(3):
        opt.update(p_whole, g_whole.copy(), b_whole, 0.05)
        for part in (slice(0, 40), slice(40, n)):
            opt.update(
                p_split[part], g_split[part].copy(), [b[part] for b in b_split], 0.05
            )
    assert not np.array_equal(p_whole, params)
    assert_array_equal(p_split, p_whole)
    for a, b in zip(b_split, b_whole):
        assert_array_equal(a, b)


def test_base_optimizer_update_not_implemented():
    """BaseOptimizer itself has no update rule."""
    with pytest.raises(NotImplementedError, match="must implement"):
        BaseOptimizer().update(P0.copy(), G0.copy(), [], LR)


class CountingSGD(BaseOptimizer):
    """SGD that counts its calls and checks what the estimator passes."""

    n_buffers = 1

    def __init__(self, scale=1.0):
        self.scale = scale

    def update(self, params, grad, buffers, learning_rate):
        self.n_calls_seen = getattr(self, "n_calls_seen", 0) + 1
        self.buffer_shapes = [b.shape for b in buffers]
        self.learning_rates = getattr(self, "learning_rates", []) + [learning_rate]
        params -= self.scale * learning_rate * grad


def test_mlp_uses_custom_optimizer(multiclass_data):
    """A BaseOptimizer subclass is called once per batch with its buffers."""
    X, y = multiclass_data
    opt = CountingSGD()
    clf = MLPClassifier(
        hidden_layer_sizes=(5,),
        optimizer=opt,
        batch_size=50,
        max_iter=4,
        learning_rate_init=0.02,
        tol=0,
        random_state=0,
    )
    _fit_quietly(clf, X, y)
    assert clf.n_iter_ == 4
    # 120 rows in batches of 50: 3 steps an epoch.
    assert opt.n_calls_seen == 12
    n_params = 6 * 5 + 5 * 3 + 5 + 3
    assert opt.buffer_shapes == [(n_params,)]
    assert opt.learning_rates == [0.02] * 12


def test_mlp_custom_optimizer_matches_builtin_sgd(multiclass_data):
    """A custom optimizer with the SGD rule fits exactly as optimizer='sgd'."""
    X, y = multiclass_data
    params = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    custom = _fit_quietly(MLPClassifier(optimizer=CountingSGD(), **params), X, y)
    builtin = _fit_quietly(MLPClassifier(optimizer="sgd", **params), X, y)
    for a, b in zip(custom.coefs_, builtin.coefs_):
        assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_mlp_optimizer_name_uses_estimator_momentum(multiclass_data):
    """optimizer='momentum' with momentum=m fits as Momentum(momentum=m)."""
    X, y = multiclass_data
    params = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    by_name = _fit_quietly(
        MLPClassifier(optimizer="momentum", momentum=0.5, **params), X, y
    )
    by_object = _fit_quietly(
        MLPClassifier(optimizer=Momentum(momentum=0.5), momentum=0.9, **params), X, y
    )
    other = _fit_quietly(
        MLPClassifier(optimizer="momentum", momentum=0.9, **params), X, y
    )
    assert_array_equal(by_name.coefs_[0], by_object.coefs_[0])
    assert not np.array_equal(by_name.coefs_[0], other.coefs_[0])


def test_optimizer_survives_clone():
    """clone copies an optimizer object with its parameters."""
    clf = MLPClassifier(optimizer=Nesterov(momentum=0.7))
    cloned = clone(clf)
    assert isinstance(cloned.optimizer, Nesterov)
    assert cloned.optimizer is not clf.optimizer
    assert cloned.optimizer.get_params() == {"momentum": 0.7}


def test_optimizer_nested_get_and_set_params():
    """optimizer__momentum is visible in get_params and settable by set_params."""
    clf = MLPClassifier(optimizer=Momentum(momentum=0.8))
    assert clf.get_params()["optimizer__momentum"] == 0.8
    clf.set_params(optimizer__momentum=0.3)
    assert clf.optimizer.momentum == 0.3
    assert clf.get_params()["optimizer__momentum"] == 0.3


@pytest.mark.parametrize("cls", [SGD, Momentum, Nesterov])
def test_optimizer_pickle_round_trip(cls):
    """A pickled optimizer keeps its parameters and takes the same step."""
    opt = cls() if cls is SGD else cls(momentum=0.6)
    restored = pickle.loads(pickle.dumps(opt))
    assert type(restored) is cls
    assert restored.get_params() == opt.get_params()
    p1, v1 = P0.copy(), V0.copy()
    p2, v2 = P0.copy(), V0.copy()
    opt.update(p1, G0.copy(), [v1][: opt.n_buffers], LR)
    restored.update(p2, G0.copy(), [v2][: restored.n_buffers], LR)
    assert_array_equal(p1, p2)


@pytest.mark.parametrize(
    "opt", [SGD(), Momentum(momentum=0.8), Nesterov(momentum=0.5), CountingSGD(2.0)]
)
def test_mlp_does_not_mutate_optimizer(opt, multiclass_data):
    """fit and partial_fit leave the optimizer object's parameters unchanged."""
    X, y = multiclass_data
    before = opt.get_params()
    clf = MLPClassifier(hidden_layer_sizes=(5,), optimizer=opt, max_iter=3)
    _fit_quietly(clf, X, y)
    clf.partial_fit(X, y)
    assert clf.optimizer is opt
    assert opt.get_params() == before


def test_mlp_unknown_optimizer_name_raises(multiclass_data):
    """An unknown optimizer name is a parameter error naming 'optimizer'."""
    X, y = multiclass_data
    with pytest.raises(InvalidParameterError, match="'optimizer' parameter"):
        MLPClassifier(optimizer="adam").fit(X, y)


def test_mlp_optimizer_plain_object_raises(multiclass_data):
    """An object that does not derive from BaseOptimizer is rejected."""

    class NotAnOptimizer:
        n_buffers = 0

        def update(self, params, grad, buffers, learning_rate):
            params -= learning_rate * grad

    X, y = multiclass_data
    with pytest.raises(InvalidParameterError, match="'optimizer' parameter"):
        MLPClassifier(optimizer=NotAnOptimizer()).fit(X, y)
