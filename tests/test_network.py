"""Tests of the network numerics: layout, forward pass, loss and gradient."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from sknet._network import (
    LEAKY_RELU_SLOPE,
    Layout,
    finish_gradient,
    forward,
    l2_penalty,
    loss_grad,
)

HIDDEN_ACTIVATIONS = ["identity", "logistic", "tanh", "relu", "leaky_relu"]
N_FEATURES = 4
HIDDEN = (5, 3)
N_ROWS = 7
ALPHA = 0.3
EPS = 1e-6
# Smallest distance of any hidden pre-activation from the relu kink at 0; a
# central difference moves a pre-activation by far less than this.
KINK_MARGIN = 1e-3


def _targets(kind, rng, n_rows):
    """Targets and output activation for an output kind."""
    if kind == "softmax":
        labels = np.arange(n_rows) % 3
        rng.shuffle(labels)
        return np.eye(3)[labels], "softmax"
    if kind == "binary":
        return (np.arange(n_rows) % 2).reshape(-1, 1).astype(float), "logistic"
    Y = (rng.uniform(size=(n_rows, 3)) < 0.5).astype(float)
    return Y, "logistic"


def _hidden_pre_activations(coefs, intercepts, X, activation):
    """Pre-activations of every hidden layer, computed independently."""
    funcs = {
        "identity": lambda z: z,
        "logistic": lambda z: 1 / (1 + np.exp(-z)),
        "tanh": np.tanh,
        "relu": lambda z: np.maximum(z, 0),
        "leaky_relu": lambda z: np.where(z > 0, z, LEAKY_RELU_SLOPE * z),
    }
    A, pre = X, []
    for W, b in zip(coefs[:-1], intercepts[:-1]):
        Z = A @ W + b
        pre.append(Z)
        A = funcs[activation](Z)
    return pre


def _problem(kind, activation, seed=0):
    """A tiny float64 problem whose hidden pre-activations avoid the kink."""
    Y_probe = _targets(kind, np.random.RandomState(seed), N_ROWS)[0]
    layout = Layout([N_FEATURES, *HIDDEN, Y_probe.shape[1]])
    for attempt in range(100):
        rng = np.random.RandomState(1000 * seed + attempt)
        X = rng.normal(size=(N_ROWS, N_FEATURES))
        Y, out_activation = _targets(kind, rng, N_ROWS)
        sw = rng.uniform(0.5, 2.0, size=N_ROWS)
        params = rng.normal(scale=0.7, size=layout.n_params)
        coefs, intercepts = layout.views(params)
        pre = _hidden_pre_activations(coefs, intercepts, X, activation)
        if min(np.abs(Z).min() for Z in pre) > KINK_MARGIN:
            return layout, X, Y, sw, params, out_activation
    raise AssertionError("could not draw a problem away from the kink")


def _full_loss(layout, params, X, Y, sw, activation, out_activation):
    """The documented batch loss: mean weighted loss plus the L2 term."""
    scratch = np.empty_like(params)
    coefs, intercepts = layout.views(params)
    summed = loss_grad(
        coefs,
        intercepts,
        X,
        Y,
        sw,
        activation,
        out_activation,
        layout.views(scratch),
    )
    weight_sum = sw.sum()
    return summed / weight_sum + l2_penalty(params, layout.n_coefs, ALPHA, weight_sum)


def _full_gradient(layout, params, X, Y, sw, activation, out_activation):
    """The analytic batch gradient: summed gradient, then finish_gradient."""
    grad = np.empty_like(params)
    coefs, intercepts = layout.views(params)
    loss_grad(
        coefs, intercepts, X, Y, sw, activation, out_activation, layout.views(grad)
    )
    finish_gradient(grad, params, layout.n_coefs, ALPHA, sw.sum())
    return grad


@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("kind", ["softmax", "binary", "multilabel"])
def test_loss_grad_matches_finite_differences(activation, kind):
    """The analytic gradient, L2 and sample weights included, is the true one."""
    layout, X, Y, sw, params, out_activation = _problem(kind, activation)
    args = (X, Y, sw, activation, out_activation)
    analytic = _full_gradient(layout, params.copy(), *args)

    numeric = np.empty_like(params)
    for i in range(layout.n_params):
        plus, minus = params.copy(), params.copy()
        plus[i] += EPS
        minus[i] -= EPS
        f_plus = _full_loss(layout, plus, *args)
        f_minus = _full_loss(layout, minus, *args)
        numeric[i] = (f_plus - f_minus) / (2 * EPS)

    assert np.abs(analytic).max() > 1e-2
    assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("kind", ["softmax", "multilabel"])
def test_loss_grad_shards_add_up_to_batch(kind):
    """Summed loss and gradient of two shards equal those of the whole batch."""
    layout, X, Y, sw, params, out_activation = _problem(kind, "tanh", seed=3)
    coefs, intercepts = layout.views(params)

    def summed(rows):
        grad = np.empty_like(params)
        loss = loss_grad(
            coefs,
            intercepts,
            X[rows],
            Y[rows],
            sw[rows],
            "tanh",
            out_activation,
            layout.views(grad),
        )
        return loss, grad

    loss_all, grad_all = summed(slice(None))
    loss_a, grad_a = summed(slice(0, 3))
    loss_b, grad_b = summed(slice(3, None))
    assert_allclose(loss_a + loss_b, loss_all, rtol=1e-12)
    assert_allclose(grad_a + grad_b, grad_all, rtol=1e-12, atol=1e-14)


def test_loss_grad_without_sample_weight_weighs_rows_one():
    """sample_weight=None gives the same loss and gradient as all-ones weights."""
    layout, X, Y, _, params, out_activation = _problem("softmax", "relu", seed=4)
    coefs, intercepts = layout.views(params)
    grad_none, grad_ones = np.empty_like(params), np.empty_like(params)
    loss_none = loss_grad(
        coefs, intercepts, X, Y, None, "relu", out_activation, layout.views(grad_none)
    )
    loss_ones = loss_grad(
        coefs,
        intercepts,
        X,
        Y,
        np.ones(N_ROWS),
        "relu",
        out_activation,
        layout.views(grad_ones),
    )
    assert loss_none == pytest.approx(loss_ones, rel=1e-14)
    assert_allclose(grad_none, grad_ones, rtol=1e-14)


def test_layout_views_share_memory_with_buffer():
    """Writing to a view returned by Layout.views writes into the buffer."""
    layout = Layout([4, 5, 3, 2])
    buffer = np.zeros(layout.n_params)
    coefs, intercepts = layout.views(buffer)
    assert [c.shape for c in coefs] == [(4, 5), (5, 3), (3, 2)]
    assert [b.shape for b in intercepts] == [(5,), (3,), (2,)]
    for view in coefs + intercepts:
        assert np.shares_memory(view, buffer)
    coefs[1][2, 1] = 7.0
    intercepts[2][1] = -3.0
    assert buffer[20 + 2 * 3 + 1] == 7.0
    assert buffer[-1] == -3.0
    assert np.count_nonzero(buffer) == 2


def test_layout_coefs_come_before_intercepts():
    """The first n_coefs entries of the buffer are exactly the weights."""
    layer_units = [4, 5, 3, 2]
    layout = Layout(layer_units)
    n_coefs = 4 * 5 + 5 * 3 + 3 * 2
    assert layout.n_coefs == n_coefs
    assert layout.n_params == n_coefs + 5 + 3 + 2
    buffer = np.arange(layout.n_params, dtype=float)
    coefs, intercepts = layout.views(buffer)
    assert_array_equal(np.concatenate([c.ravel() for c in coefs]), buffer[:n_coefs])
    assert_array_equal(np.concatenate(intercepts), buffer[n_coefs:])


def test_layout_pack_round_trips_views():
    """pack copies weights and biases into a buffer whose views give them back."""
    layout = Layout([3, 4, 2])
    rng = np.random.RandomState(0)
    coefs = [rng.normal(size=s) for s in [(3, 4), (4, 2)]]
    intercepts = [rng.normal(size=4), rng.normal(size=2)]
    buffer = layout.pack(coefs, intercepts, np.float32)
    assert buffer.dtype == np.float32
    got_coefs, got_intercepts = layout.views(buffer)
    for got, want in zip(got_coefs + got_intercepts, coefs + intercepts):
        assert_array_equal(got, want.astype(np.float32))
        assert not np.shares_memory(got, want)


def test_l2_penalty_covers_weights_only():
    """The L2 term and its gradient use the weights and never the biases."""
    layout = Layout([4, 5, 3, 2])
    rng = np.random.RandomState(1)
    params = rng.normal(size=layout.n_params)
    coefs, intercepts = layout.views(params)
    squared = sum(float((c**2).sum()) for c in coefs)
    penalty = l2_penalty(params, layout.n_coefs, ALPHA, 6.0)
    assert penalty == pytest.approx(0.5 * ALPHA * squared / 6.0, rel=1e-12)

    intercepts[0][:] = 100.0
    assert l2_penalty(params, layout.n_coefs, ALPHA, 6.0) == penalty
    assert l2_penalty(params, layout.n_coefs, 0.0, 6.0) == 0.0

    grad = np.zeros_like(params)
    finish_gradient(grad, params, layout.n_coefs, ALPHA, 6.0)
    grad_coefs, grad_intercepts = layout.views(grad)
    for g, c in zip(grad_coefs, coefs):
        assert_allclose(g, ALPHA * c / 6.0, rtol=1e-15)
    for g in grad_intercepts:
        assert_array_equal(g, 0.0)


def test_finish_gradient_divides_by_weight_sum():
    """Without L2, finish_gradient only divides the summed gradient."""
    params = np.arange(6.0)
    grad = np.array([2.0, 4.0, 6.0, 8.0, 10.0, 12.0])
    finish_gradient(grad, params, 4, 0.0, 2.0)
    assert_array_equal(grad, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])


@pytest.mark.parametrize("kind", ["softmax", "binary", "multilabel"])
def test_loss_grad_sparse_csr_matches_dense(kind):
    """CSR input gives the same loss and gradient as the dense array."""
    layout, X, Y, sw, params, out_activation = _problem(kind, "relu", seed=5)
    X = X.copy()
    X[np.abs(X) < 0.6] = 0.0
    assert 0 < np.count_nonzero(X) < X.size
    coefs, intercepts = layout.views(params)
    grad_dense, grad_sparse = np.empty_like(params), np.empty_like(params)
    loss_dense = loss_grad(
        coefs, intercepts, X, Y, sw, "relu", out_activation, layout.views(grad_dense)
    )
    loss_sparse = loss_grad(
        coefs,
        intercepts,
        sp.csr_matrix(X),
        Y,
        sw,
        "relu",
        out_activation,
        layout.views(grad_sparse),
    )
    assert loss_sparse == pytest.approx(loss_dense, rel=1e-12)
    assert_allclose(grad_sparse, grad_dense, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["softmax", "binary", "multilabel"])
@pytest.mark.parametrize("sparse", [False, True])
def test_loss_grad_float32_keeps_float32(kind, sparse):
    """float32 data and parameters give a float32 gradient close to float64's."""
    layout, X, Y, sw, params, out_activation = _problem(kind, "tanh", seed=6)
    coefs64, intercepts64 = layout.views(params)
    grad64 = np.empty_like(params)
    loss64 = loss_grad(
        coefs64, intercepts64, X, Y, sw, "tanh", out_activation, layout.views(grad64)
    )

    params32 = params.astype(np.float32)
    X32 = X.astype(np.float32)
    X32 = sp.csr_matrix(X32) if sparse else X32
    coefs32, intercepts32 = layout.views(params32)
    grad32 = np.empty_like(params32)
    loss32 = loss_grad(
        coefs32,
        intercepts32,
        X32,
        Y.astype(np.float32),
        sw.astype(np.float32),
        "tanh",
        out_activation,
        layout.views(grad32),
    )
    finish_gradient(grad32, params32, layout.n_coefs, ALPHA, np.float32(sw.sum()))
    finish_gradient(grad64, params, layout.n_coefs, ALPHA, sw.sum())
    assert grad32.dtype == np.float32
    acts = forward(coefs32, intercepts32, X32, "tanh", out_activation)
    assert all(a.dtype == np.float32 for a in acts[1:])
    assert loss32 == pytest.approx(loss64, rel=1e-4)
    assert_allclose(grad32, grad64, rtol=1e-3, atol=1e-5)


def test_forward_output_activations():
    """Softmax rows sum to one; logistic outputs lie in (0, 1)."""
    layout = Layout([4, 5, 3])
    rng = np.random.RandomState(7)
    params = rng.normal(size=layout.n_params)
    X = rng.normal(size=(6, 4))
    coefs, intercepts = layout.views(params)
    soft = forward(coefs, intercepts, X, "relu", "softmax")
    assert len(soft) == 3
    assert soft[-1].shape == (6, 3)
    assert_allclose(soft[-1].sum(axis=1), 1.0, rtol=1e-14)
    logi = forward(coefs, intercepts, X, "relu", "logistic")[-1]
    assert np.all((logi > 0) & (logi < 1))
    assert_allclose(logi, 1 / (1 + np.exp(-(soft[1] @ coefs[1] + intercepts[1]))))


def test_forward_leaky_relu_keeps_small_slope():
    """leaky_relu is max(z, 0.01 z) on the hidden layer."""
    W = np.array([[1.0, -1.0]])
    b = np.zeros(2)
    X = np.array([[2.0], [-3.0]])
    acts = forward([W, np.eye(2)], [b, np.zeros(2)], X, "leaky_relu", "logistic")
    assert_allclose(acts[1], [[2.0, -0.02], [-0.03, 3.0]], rtol=1e-15)


def test_loss_grad_confident_wrong_prediction_is_finite():
    """A confidently wrong prediction gives a large but finite loss."""
    layout = Layout([1, 2])
    params = np.array([1000.0, -1000.0, 0.0, 0.0])
    coefs, intercepts = layout.views(params)
    grad = np.empty_like(params)
    loss = loss_grad(
        coefs,
        intercepts,
        np.array([[1.0]]),
        np.array([[0.0, 1.0]]),
        None,
        "identity",
        "softmax",
        layout.views(grad),
    )
    assert np.isfinite(loss)
    assert loss == pytest.approx(2000.0, rel=1e-12)
    assert np.all(np.isfinite(grad))
