"""The network's numerics: parameter layout, activations, loss and gradient.

Everything here is a function of its arguments. The training step,
:func:`loss_grad`, reads the parameters of a shard of a batch and writes the
sum of that shard's gradients into a buffer; it neither normalises nor adds
the L2 term, so that the gradients of several shards, computed anywhere, add
up to the batch's gradient (see :func:`finish_gradient`).
"""

import numpy as np
from scipy.special import expit
from sklearn.utils.extmath import safe_sparse_dot

LEAKY_RELU_SLOPE = 0.01


# Activations, applied in place to the pre-activation of a layer.


def _identity(Z):
    return Z


def _logistic(Z):
    return expit(Z, out=Z)


def _tanh(Z):
    return np.tanh(Z, out=Z)


def _relu(Z):
    return np.maximum(Z, 0, out=Z)


def _leaky_relu(Z):
    Z[Z < 0] *= LEAKY_RELU_SLOPE
    return Z


def _softmax(Z):
    Z -= Z.max(axis=1, keepdims=True)
    np.exp(Z, out=Z)
    Z /= Z.sum(axis=1, keepdims=True)
    return Z


ACTIVATIONS = {
    "identity": _identity,
    "logistic": _logistic,
    "tanh": _tanh,
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "softmax": _softmax,
}


# Derivatives: multiply the backpropagated error ``delta`` in place by the
# activation's derivative, written in terms of the activation's output ``A``.


def _identity_derivative(A, delta):
    pass


def _logistic_derivative(A, delta):
    delta *= A
    delta *= 1 - A


def _tanh_derivative(A, delta):
    delta *= 1 - A**2


def _relu_derivative(A, delta):
    delta[A <= 0] = 0


def _leaky_relu_derivative(A, delta):
    delta[A < 0] *= LEAKY_RELU_SLOPE


DERIVATIVES = {
    "identity": _identity_derivative,
    "logistic": _logistic_derivative,
    "tanh": _tanh_derivative,
    "relu": _relu_derivative,
    "leaky_relu": _leaky_relu_derivative,
}


class Layout:
    """Where each layer's weights and biases sit in one flat parameter buffer.

    All weight matrices come first, layer by layer, then all bias vectors, so
    that the L2 penalty applies to the slice ``[:n_coefs]``.

    Parameters
    ----------
    layer_units : sequence of int
        Units per layer, input and output layers included.
    """

    def __init__(self, layer_units):
        self.layer_units = tuple(int(u) for u in layer_units)
        shapes = list(zip(self.layer_units[:-1], self.layer_units[1:]))
        self.coef_shapes = shapes
        offsets = np.cumsum(
            [0] + [a * b for a, b in shapes] + list(self.layer_units[1:])
        )
        self.n_coefs = int(offsets[len(shapes)])
        self.n_params = int(offsets[-1])
        self._coef_bounds = list(
            zip(offsets[: len(shapes)], offsets[1 : len(shapes) + 1])
        )
        self._intercept_bounds = list(
            zip(offsets[len(shapes) : -1], offsets[len(shapes) + 1 :])
        )

    def views(self, buffer):
        """Split a flat buffer into lists of weight and bias views."""
        coefs = [
            buffer[a:b].reshape(shape)
            for (a, b), shape in zip(self._coef_bounds, self.coef_shapes)
        ]
        intercepts = [buffer[a:b] for a, b in self._intercept_bounds]
        return coefs, intercepts

    def pack(self, coefs, intercepts, dtype):
        """Copy lists of weights and biases into a new flat buffer."""
        buffer = np.empty(self.n_params, dtype=dtype)
        coef_views, intercept_views = self.views(buffer)
        for view, value in zip(
            coef_views + intercept_views, list(coefs) + list(intercepts)
        ):
            view[...] = value
        return buffer


def forward(coefs, intercepts, X, activation, out_activation):
    """Return the activations of every layer, the input included."""
    activations = [X]
    hidden = ACTIVATIONS[activation]
    last = len(coefs) - 1
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        Z = safe_sparse_dot(activations[-1], W, dense_output=True)
        Z += b
        activations.append(ACTIVATIONS[out_activation](Z) if i == last else hidden(Z))
    return activations


def _output_loss_and_delta(Z_out, Y, sample_weight, out_activation):
    """Weighted sum of the loss over the rows, and its gradient w.r.t. Z_out.

    The log-probabilities are computed from the pre-activation in a stable
    way, so a confident wrong prediction gives a large but finite loss.
    """
    if out_activation == "softmax":
        shifted = Z_out - Z_out.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        row_loss = -(Y * (shifted - log_norm)).sum(axis=1)
        delta = _softmax(Z_out) - Y
    else:
        # -log p = log(1 + exp(-z)) and -log(1 - p) = log(1 + exp(z))
        row_loss = (Y * np.logaddexp(0, -Z_out) + (1 - Y) * np.logaddexp(0, Z_out)).sum(
            axis=1
        )
        delta = expit(Z_out, out=Z_out) - Y
    if sample_weight is None:
        return float(row_loss.sum(dtype=np.float64)), delta
    delta *= sample_weight[:, np.newaxis]
    return float(np.dot(row_loss, sample_weight)), delta


def loss_grad(
    coefs, intercepts, X, Y, sample_weight, activation, out_activation, grads
):
    """Training step on one shard: the loss summed over its rows and its gradient.

    Parameters
    ----------
    coefs, intercepts : list of ndarray
        The network's weights and biases.
    X : {ndarray, sparse matrix} of shape (n_rows, n_features)
        The shard's input rows.
    Y : ndarray of shape (n_rows, n_outputs)
        The shard's targets: one-hot rows (softmax output) or 0/1 indicators
        (logistic output).
    sample_weight : ndarray of shape (n_rows,) or None
        Weight of each row; None weighs each row 1.
    activation : str
        Name of the hidden activation.
    out_activation : {'softmax', 'logistic'}
        Output activation; the loss is the matching cross-entropy.
    grads : tuple of (list of ndarray, list of ndarray)
        Views to write the gradient into, shaped as ``coefs`` and
        ``intercepts``.

    Returns
    -------
    loss : float
        Sum over the rows of ``sample_weight * row_loss``, without L2 term.
    """
    coef_grads, intercept_grads = grads
    activations = forward(coefs, intercepts, X, activation, "identity")
    loss, delta = _output_loss_and_delta(
        activations[-1], Y, sample_weight, out_activation
    )

    derivative = DERIVATIVES[activation]
    for i in range(len(coefs) - 1, -1, -1):
        _weight_gradient(activations[i], delta, coef_grads[i])
        delta.sum(axis=0, out=intercept_grads[i])
        if i > 0:
            delta = delta @ coefs[i].T
            derivative(activations[i], delta)
    return loss


def _weight_gradient(A, delta, out):
    if isinstance(A, np.ndarray):
        np.dot(A.T, delta, out=out)
    else:
        out[...] = safe_sparse_dot(A.T, delta, dense_output=True)


def finish_gradient(grad, params, n_coefs, alpha, weight_sum, scratch=None):
    """Turn a summed gradient into the batch's mean gradient with L2, in place.

    ``grad = (grad + alpha * W) / weight_sum``, where ``W`` is the weight part
    of the parameters (biases are not penalised): the same scaling as
    scikit-learn's, so that ``alpha`` means the same in both. ``scratch``, a
    free array at least as long as ``grad``, saves allocating a temporary.
    """
    if alpha:
        term = np.multiply(
            params[:n_coefs], alpha, out=None if scratch is None else scratch[:n_coefs]
        )
        grad[:n_coefs] += term
    grad /= weight_sum


def weight_sq_norm(params, n_coefs, alpha):
    """``||W||^2`` of the weights, computed only when L2 is on."""
    if not alpha:
        return 0.0
    w = params[:n_coefs]
    return float(np.dot(w, w))


def l2_term(sq_norm, alpha, weight_sum):
    """The L2 term of a batch's loss from ``||W||^2``."""
    return 0.5 * alpha * sq_norm / weight_sum if alpha else 0.0


def l2_penalty(params, n_coefs, alpha, weight_sum):
    """The L2 term of a batch's loss: ``0.5 * alpha * ||W||^2 / weight_sum``."""
    return l2_term(weight_sq_norm(params, n_coefs, alpha), alpha, weight_sum)
