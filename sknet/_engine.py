"""The training engine: runs the mini-batches of an epoch.

A batch is cut into shards by :func:`shard_bounds`, a rule that depends on the
batch's size alone. Each shard's gradient is computed by the training step
(:func:`sknet._network.loss_grad`) and the shard gradients are added from the
first to the last. Every later operation on the parameters (normalising,
L2, the optimizer's update) is element-wise. Whoever computes a shard and
whichever slice of the parameters a process updates, the arithmetic is the
same, which is what makes a fit independent of the number of workers.
"""

import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from ._network import finish_gradient, l2_term, loss_grad, weight_sq_norm

# Shards hold at least _MIN_SHARD_ROWS rows, and their number is a power of
# two up to _MAX_SHARDS, so 2, 4 or 8 workers share them evenly. Each shard
# costs a pass over a full gradient (measured: about 0.37 ms for 200,000
# float64 parameters, an eighth of a 200-row step), so shards stay large.
_MIN_SHARD_ROWS = 64
_MAX_SHARDS = 8


_blas_lock = threading.Lock()
_blas_state = {"users": 0, "limiter": None}


@contextmanager
def single_blas_thread():
    """Hold BLAS at one thread while any training runs in this process.

    BLAS's thread count is global to the process: fits running at once in
    several threads share one limit, set by the first and lifted by the last.
    """
    with _blas_lock:
        if _blas_state["users"] == 0:
            _blas_state["limiter"] = threadpool_limits(limits=1, user_api="blas")
        _blas_state["users"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_state["users"] -= 1
            if _blas_state["users"] == 0:
                _blas_state.pop("limiter").restore_original_limits()


def shard_bounds(n_rows):
    """Cut ``n_rows`` rows into contiguous shards; return their edges."""
    n_shards = 1
    while n_shards < _MAX_SHARDS and n_rows >= 2 * n_shards * _MIN_SHARD_ROWS:
        n_shards *= 2
    return [(n_rows * k) // n_shards for k in range(n_shards + 1)]


def batch_slices(n_samples, batch_size):
    """Edges of the consecutive batches of an epoch."""
    return [
        (a, min(a + batch_size, n_samples)) for a in range(0, n_samples, batch_size)
    ]


@dataclass
class Problem:
    """What the training step needs besides the parameters and the data."""

    layout: object
    activation: str
    out_activation: str
    alpha: float
    optimizer: object


@dataclass
class EpochResult:
    """What an epoch did: summed loss, rows and steps done, and why it ended."""

    loss_sum: float = 0.0
    n_rows: int = 0
    n_seen: int = 0
    n_steps: int = 0
    diverged: bool = False
    interrupted: bool = False


def shard_loss_grad(problem, params, data, rows, grad):
    """Run the training step on the rows ``rows`` and write into ``grad``.

    Returns the shard's weighted loss sum and its sum of sample weights.
    """
    X, Y, sample_weight = data
    sw = None if sample_weight is None else sample_weight[rows]
    coefs, intercepts = problem.layout.views(params)
    loss = loss_grad(
        coefs,
        intercepts,
        X[rows],
        Y[rows],
        sw,
        problem.activation,
        problem.out_activation,
        problem.layout.views(grad),
    )
    weight = float(len(rows)) if sw is None else float(sw.sum(dtype=np.float64))
    return loss, weight


def apply_step(
    problem, params, grad, buffers, weight_sum, learning_rate, part, scratch
):
    """Normalise, add L2 and update the parameters in the slice ``part``.

    ``scratch`` is a free array of the parameters' size.
    """
    lo, hi = part
    n_coefs = problem.layout.n_coefs
    finish_gradient(
        grad[lo:hi],
        params[lo:hi],
        max(0, min(n_coefs, hi) - lo),
        problem.alpha,
        weight_sum,
        scratch[lo:hi],
    )
    returned = problem.optimizer.update(
        params[lo:hi], grad[lo:hi], [b[lo:hi] for b in buffers], learning_rate
    )
    if returned is not None:
        raise TypeError(
            f"{type(problem.optimizer).__name__}.update must move params in place "
            f"and return None; it returned a {type(returned).__name__}."
        )


def ordered_sum(values):
    """Add floats from first to last (the built-in ``sum`` may compensate)."""
    total = 0.0
    for value in values:
        total += value
    return total


def record_step(result, loss, weight, sq_norm, alpha, n_rows):
    """Add a finished step's mean loss, L2 term included, to ``result``."""
    result.loss_sum += (loss / weight + l2_term(sq_norm, alpha, weight)) * n_rows
    result.n_rows += n_rows
    result.n_steps += 1


class SerialEngine:
    """Runs every shard in the calling process.

    Parameters
    ----------
    problem : Problem
        Network, loss, L2 strength and optimizer.
    data : tuple of (X, Y, sample_weight)
        Training rows; ``sample_weight`` may be None.
    """

    n_workers = 1

    def __init__(self, problem, data):
        self.problem = problem
        self.data = data
        n_params = problem.layout.n_params
        dtype = data[1].dtype
        self._grad = np.empty(n_params, dtype=dtype)
        self._shard_grad = np.empty(n_params, dtype=dtype)

    def run_epoch(self, params, buffers, order, batch_size, learning_rate, stop):
        """Train on the rows ``order``, batch by batch.

        Stops early, after a whole step, when ``stop()`` turns true or when a
        batch's loss is not finite (before updating with it).
        """
        problem = self.problem
        result = EpochResult()
        for start, end in batch_slices(len(order), batch_size):
            losses, weights = self._batch_gradient(params, order[start:end])
            loss, weight = ordered_sum(losses), ordered_sum(weights)
            if not np.isfinite(loss):
                result.diverged = True
                return result
            if weight > 0:
                sq_norm = weight_sq_norm(params, problem.layout.n_coefs, problem.alpha)
                apply_step(
                    problem,
                    params,
                    self._grad,
                    buffers,
                    weight,
                    learning_rate,
                    (0, len(params)),
                    self._shard_grad,
                )
                record_step(result, loss, weight, sq_norm, problem.alpha, end - start)
            result.n_seen += end - start
            if stop():
                result.interrupted = True
                return result
        return result

    def _batch_gradient(self, params, rows):
        """Sum the shard gradients in order into ``self._grad``."""
        edges = shard_bounds(len(rows))
        losses, weights = [], []
        for k in range(len(edges) - 1):
            target = self._grad if k == 0 else self._shard_grad
            loss, weight = shard_loss_grad(
                self.problem, params, self.data, rows[edges[k] : edges[k + 1]], target
            )
            if k > 0:
                self._grad += self._shard_grad
            losses.append(loss)
            weights.append(weight)
        return losses, weights

    def close(self):
        """Release resources; nothing to do in-process."""
