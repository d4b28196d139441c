"""Training on a stream of chunks, for data larger than memory."""

import numpy as np
from sklearn.metrics import accuracy_score

from ._mlp import _interrupt_flag


def fit_stream(
    estimator,
    chunks,
    *,
    classes,
    epochs=1,
    validation_data=None,
    n_iter_no_change=None,
    tol=None,
):
    """Train a classifier with ``partial_fit`` over a stream of chunks.

    Each epoch reads the chunks once, in order, one at a time, so that only
    one chunk needs to be in memory. With ``validation_data``, the accuracy
    on that held-out chunk is measured after every epoch; training stops
    once it has not improved by ``tol`` for ``n_iter_no_change`` epochs, and
    the weights of the best epoch are restored: early stopping for streams.

    Parameters
    ----------
    estimator : MLPClassifier
        The classifier to train; it keeps the weights of earlier calls.

    chunks : callable or iterable
        A callable that returns a fresh iterable of chunks each time it is
        called (once per epoch), or a re-iterable such as a list. A chunk is
        a tuple ``(X, y)`` or ``(X, y, sample_weight)``.

    classes : array-like of shape (n_classes,)
        Every class that can appear in any chunk.

    epochs : int, default=1
        Most passes over the stream.

    validation_data : tuple of (X_val, y_val), default=None
        A held-out chunk for early stopping; None trains ``epochs`` epochs.

    n_iter_no_change : int, default=None
        Patience in epochs; None uses the estimator's ``n_iter_no_change``.

    tol : float, default=None
        Improvement of the validation accuracy below which an epoch counts
        as no progress; None uses the estimator's ``tol``.

    Returns
    -------
    estimator : MLPClassifier
        The trained estimator. With ``validation_data``, its
        ``validation_scores_`` holds the accuracy of each epoch of this call
        and ``best_validation_score_`` the best of them.

    Notes
    -----
    A generator can be read only once: pass a function that makes one, for
    example ``lambda: read_chunks(path)``, so each epoch gets a new one.

    Ctrl-C stops the whole stream after the current batch, with the weights
    of that step (the best epoch's are then not restored).

    Examples
    --------
    >>> import numpy as np
    >>> from sknet import MLPClassifier, fit_stream
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(600, 4))
    >>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
    >>> def chunks():
    ...     for start in range(0, 500, 100):
    ...         yield X[start:start + 100], y[start:start + 100]
    >>> clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    >>> clf = fit_stream(clf, chunks, classes=[0, 1], epochs=20,
    ...                  validation_data=(X[500:], y[500:]))
    >>> clf.best_validation_score_ > 0.9
    True
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)):
        raise TypeError(f"epochs must be an int >= 1; got {epochs!r}.")
    if epochs < 1:
        raise ValueError(f"epochs must be an int >= 1; got {epochs!r}.")
    if not callable(chunks) and iter(chunks) is chunks:
        raise TypeError(
            "chunks must be a callable that returns a new iterable each epoch, "
            f"or a re-iterable such as a list; got the one-pass iterator {chunks!r}."
        )
    patience = (
        estimator.n_iter_no_change if n_iter_no_change is None else n_iter_no_change
    )
    tol = estimator.tol if tol is None else tol

    with _interrupt_flag() as interrupted:
        scores, best_weights = _epochs(
            estimator,
            chunks,
            classes,
            epochs,
            validation_data,
            patience,
            tol,
            interrupted,
        )
    if validation_data is not None and not interrupted():
        *weights, buffers = best_weights
        for array, best in zip(estimator.coefs_ + estimator.intercepts_, weights):
            array[...] = best
        estimator._optimizer_buffers[...] = buffers
    if validation_data is not None:
        estimator.validation_scores_ = scores
        estimator.best_validation_score_ = max(scores, default=-np.inf)
    return estimator


def _epochs(estimator, chunks, classes, epochs, validation_data, patience, tol, stop):
    """The stream's epoch loop; returns the scores and the best weights.

    Ctrl-C ends it after the current batch (partial_fit warns), keeping the
    weights of that step.
    """
    scores, best_score, best_weights, stale = [], -np.inf, None, 0
    for _ in range(epochs):
        n_chunks = 0
        for chunk in chunks() if callable(chunks) else chunks:
            X, y, *rest = chunk
            estimator.partial_fit(X, y, *rest, classes=classes)
            n_chunks += 1
            if stop():
                return scores, best_weights
        if n_chunks == 0:
            raise ValueError("chunks yielded no chunk; there is nothing to train on.")
        if validation_data is None:
            continue
        X_val, y_val = validation_data
        score = accuracy_score(y_val, estimator.predict(X_val))
        scores.append(score)
        stale = 0 if score > best_score + tol else stale + 1
        if score > best_score:
            best_score = score
            # The optimizer's state (velocities) goes with the weights, so a
            # later partial_fit continues from the best epoch as a whole.
            best_weights = [a.copy() for a in estimator.coefs_ + estimator.intercepts_]
            best_weights.append(estimator._optimizer_buffers.copy())
        if stale >= patience:
            break
    return scores, best_weights
