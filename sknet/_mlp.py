"""The multi-layer perceptron classifier."""

import signal
import threading
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._callbacks import CallbackSupportMixin, FitHooks, with_callbacks
from ._engine import Problem, SerialEngine, single_blas_thread
from ._network import Layout, forward
from ._parallel import (
    WorkerPool,
    n_workers_for,
    reason_not_to_start,
    warn_in_process,
)
from ._validation import (
    PARAMETER_CONSTRAINTS,
    check_hidden_layer_sizes,
    check_sample_weight_values,
    resolve_optimizer,
    validation_split,
    warn_user,
)
from .initializers import initialize_weights


class MLPClassifier(CallbackSupportMixin, ClassifierMixin, BaseEstimator):
    """Multi-layer perceptron classifier trained by mini-batch gradient descent.

    A drop-in replacement for scikit-learn's ``MLPClassifier`` with the
    stochastic solver, whose weight initializer and update rule are
    pluggable strategies.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of units in the ith hidden layer.

    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu'}, \
            default='relu'
        Activation of the hidden layers. 'leaky_relu' is
        ``max(x, 0.01 * x)``; the others are scikit-learn's.

    initializer : str or callable, default='xavier_uniform'
        How the weights are drawn: 'xavier_normal', 'xavier_uniform',
        'lecun_normal', 'lecun_uniform', 'he_normal', 'he_uniform', 'random'
        (uniform in [-0.5, 0.5]), an object from :mod:`sknet.initializers`,
        or any callable ``(fan_in, fan_out, rng) -> ndarray`` of shape
        ``(fan_in, fan_out)``. Biases start at zero.

    optimizer : {'sgd', 'momentum', 'nesterov'} or BaseOptimizer, \
            default='nesterov'
        The update rule. A name builds the matching class of
        :mod:`sknet.optimizers` with this estimator's ``momentum``; an object
        is used as it is (its own ``momentum`` applies).

    alpha : float, default=0.0001
        Strength of the L2 penalty, scaled as in scikit-learn: a batch whose
        sample weights sum to ``s`` adds ``0.5 * alpha * ||W||^2 / s`` to its
        mean loss, where ``W`` are the weights (not the biases).

    batch_size : int or 'auto', default='auto'
        Rows per mini-batch; 'auto' is ``min(200, n_samples)``. 1 gives
        stochastic and ``n_samples`` full-batch gradient descent.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning-rate schedule, as in scikit-learn: 'invscaling' sets the rate
        after each epoch to ``learning_rate_init / (t_ + 1) ** power_t``;
        'adaptive' divides it by 5 whenever ``n_iter_no_change`` epochs pass
        without improvement, and stops once it falls below 1e-6.

    learning_rate_init : float, default=0.01
        Initial learning rate. scikit-learn's default (0.001) is tuned for its
        Adam solver; 0.01 suits momentum SGD better.

    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.

    max_iter : int, default=200
        Maximum number of epochs (passes over the training data).

    shuffle : bool, default=True
        Whether to shuffle the rows before each epoch.

    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the shuffling and the early-stopping split. Pass
        an int for reproducible fits.

    tol : float, default=1e-4
        Improvement below which an epoch counts as no progress.

    verbose : bool or int, default=False
        Whether to print one line per epoch to stdout.

    warm_start : bool, default=False
        Whether ``fit`` continues from the current weights rather than
        drawing new ones.

    momentum : float, default=0.9
        Momentum of the 'momentum' and 'nesterov' optimizers, in [0, 1].

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training data
        (stratified by class) and stop when its accuracy has not improved by
        ``tol`` for ``n_iter_no_change`` epochs. The weights of the best
        epoch are restored at the end.

    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping, in (0, 1).

    n_iter_no_change : int, default=10
        Number of consecutive epochs without improvement by ``tol`` after
        which training stops (or the 'adaptive' rate shrinks).

    n_jobs : int or None, default=None
        Number of worker processes that share each mini-batch. None means 1
        unless in a :func:`joblib.parallel_config` context; -1 means all
        usable cores. It is capped at the number of usable cores and at 8.
        With 1, training runs in the calling process and starts no process.
        The fitted weights do not depend on ``n_jobs``. Processes pay off on
        large data and networks; on a data set the size of the digits they
        cost more than they save.
        See Notes for how batches are split and where workers are not
        started.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.

    coefs_ : list of ndarray
        The ith element is the weight matrix between layers i and i + 1.

    intercepts_ : list of ndarray
        The ith element is the bias vector of layer i + 1.

    n_iter_ : int
        Epochs run by the last ``fit`` (``partial_fit`` counts on).

    t_ : int
        Number of training samples seen, over every call.

    loss_ : float
        Mean training loss of the last epoch, L2 term included.

    loss_curve_ : list of float
        ``loss_`` of every epoch.

    best_loss_ : float or None
        Lowest ``loss_`` seen; None when early stopping monitors the
        validation score.

    validation_scores_ : list of float or None
        Validation accuracy of every epoch with early stopping, else None.

    best_validation_score_ : float or None
        Best validation accuracy with early stopping, else None.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when they are all strings.

    n_layers_ : int
        Number of layers, input and output included.

    n_outputs_ : int
        Number of output units.

    out_activation_ : str
        'softmax' for multiclass, 'logistic' for binary and multilabel
        targets.

    See Also
    --------
    sklearn.neural_network.MLPClassifier : scikit-learn's perceptron, with
        the L-BFGS and Adam solvers as well.

    Notes
    -----
    The loss is the cross-entropy of the output layer: softmax with the
    categorical cross-entropy for multiclass targets, logistic units with the
    binary cross-entropy for binary and multilabel ones. Within a batch,
    sample weights are normalised by their sum, so a weight of 0 is the same
    as leaving the row out and a weight of 2 the same as repeating the row;
    a batch whose weights are all zero makes no step.

    The data is converted to float64 unless it is float32, which trains in
    float32; the fitted weights keep that dtype.

    Unlike scikit-learn, training stops after exactly ``n_iter_no_change``
    epochs without improvement (scikit-learn waits one epoch more), with or
    without early stopping. If early stopping cannot hold out a validation
    split of at least 10 samples, or cannot stratify it, a ``UserWarning``
    says so and the fit holds out an unstratified split, or monitors the
    training loss instead. ``partial_fit`` trains on all the rows it is given
    and does not hold any out, whatever ``early_stopping`` says.

    If a batch's loss becomes NaN or infinite, training stops with a
    ``ValueError`` before that batch's update. A call that raises, for this
    or any other reason, leaves the estimator as it was before the call.

    Ctrl-C (``KeyboardInterrupt``) during ``fit`` or ``partial_fit`` stops
    training after the current batch, keeps its weights (even with early
    stopping, which then does not restore the best epoch's) and warns; a
    second Ctrl-C raises ``KeyboardInterrupt`` at once, and the estimator
    returns to its state before the call, as after any error. This applies
    where Python's default SIGINT handler is in place; a program that ignores
    SIGINT, or handles it itself, keeps its own handling. A fit whose loss
    ends finite but more than ten times that of a constant guess raises a
    ``ConvergenceWarning`` that names the learning rate.

    During training, BLAS is limited to one thread, so that the arithmetic,
    and therefore the fitted weights, do not depend on the machine's thread
    count. Parallel speed comes from ``n_jobs``.

    With ``n_jobs`` > 1, a batch of fewer than 128 rows is one shard and a
    larger one is cut into 2, 4 or 8 shards of at least 64 rows, by a rule
    that depends on the batch size alone; worker
    processes compute the shards' gradients into shared memory, add them
    from first to last and update the parameters, each over its own slice. A
    run with a given ``random_state`` therefore gives bitwise the same
    weights for any ``n_jobs``. Workers beyond the number of shards (2 for a
    batch of 200 rows, 8 from 512 rows) only share the update, so larger
    batches make use of more workers. A ``fit`` starts its workers once and
    ends them when it returns. ``partial_fit`` keeps its workers for the
    next ``partial_fit`` call (each call copies its rows into shared memory
    once) until the estimator is deleted, pickled (or deep-copied) or fitted
    again; a pickled estimator carries no process or shared-memory handle.
    With the 'fork' start method, workers that a ``fit`` starts inherit the
    data; otherwise (or in workers kept from an earlier ``partial_fit``) it
    is copied once into shared memory. If a worker dies,
    ``fit`` raises ``sknet.WorkerError`` (a ``RuntimeError``), leaves no
    process or segment behind and restores the estimator. Where workers
    should not be started (in a daemonic process, a thread other than the
    main one, or inside a joblib worker such as those of
    ``GridSearchCV(n_jobs=2)``), training runs in the calling process with a
    ``UserWarning``, so nested parallelism never oversubscribes the cores.

    With scikit-learn 1.9 or newer, the estimator supports its callback
    framework (``set_callbacks``): ``fit`` (or each ``partial_fit`` call) is
    the root task and every epoch a subtask. The epoch hooks and the root
    task's end receive the validation split as ``X`` and ``y`` when early
    stopping holds one out, else the training data (the root task's begin
    always gets the training data); ``fitted_estimator`` is a copy that
    predicts as of the epoch and is only built when a hook asks for it. A
    hook that returns True at the end of an epoch stops training there,
    keeping that epoch's weights. Callbacks run in the calling process
    between epochs, whatever ``n_jobs``; a callback that raises ends the fit
    as any error does.

    References
    ----------
    .. [1] X. Glorot and Y. Bengio, "Understanding the difficulty of training
       deep feedforward neural networks", AISTATS 2010.
    .. [2] I. Sutskever, J. Martens, G. Dahl and G. Hinton, "On the
       importance of initialization and momentum in deep learning",
       ICML 2013.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from sknet import MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(
    ...     X / 16, y, stratify=y, random_state=0)
    >>> clf = MLPClassifier(hidden_layer_sizes=(64,), learning_rate_init=0.05,
    ...                     early_stopping=True, random_state=0)
    >>> clf = clf.fit(X_train, y_train)
    >>> clf.n_iter_ < clf.max_iter  # stopped when validation accuracy stalled
    True
    >>> clf.predict(X_test[:5]).shape
    (5,)
    >>> clf.score(X_test, y_test) > 0.9
    True
    """

    _parameter_constraints = PARAMETER_CONSTRAINTS

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        initializer="xavier_uniform",
        optimizer="nesterov",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.01,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        n_jobs=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.initializer = initializer
        self.optimizer = optimizer
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.n_jobs = n_jobs

    # Public API

    @with_callbacks
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels, or a binary indicator matrix for multilabel
            classification.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples; None weighs each sample 1.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=False)

    @with_callbacks
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels, or a binary indicator matrix.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples.

        classes : array-like of shape (n_classes,), default=None
            Every class that can appear in any call. Required on the first
            call, ignored (if equal) on later ones.

        Returns
        -------
        self : object
            The updated estimator.
        """
        self._validate_params()
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class, in the order of ``classes_``. For
            multilabel targets, the probability of each label.
        """
        check_is_fitted(self)
        X = self._validate_X(X)
        proba = self._forward_output(X)
        if self.n_outputs_ == 1 and not self._multilabel:
            return np.hstack([1 - proba, proba])
        return proba

    def predict_log_proba(self, X):
        """Logarithm of the probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predicted labels, or a binary indicator matrix for multilabel
            targets.
        """
        check_is_fitted(self)
        return self._predict(self._validate_X(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        return tags

    def __getstate__(self):
        # Pickling releases idle workers, which cannot travel with the copy (a
        # later partial_fit starts new ones); a running fit keeps its own.
        if not self.__dict__.get("_training", False):
            self._close_pool()
        # A copy: on some Pythons the base returns the live __dict__ itself.
        state = dict(super().__getstate__())
        for key in _PROCESS_BOUND:
            state.pop(key, None)
        return state

    # Prediction helpers

    def _validate_X(self, X):
        return validate_data(
            self,
            X,
            accept_sparse=["csr", "csc"],
            dtype=(np.float64, np.float32),
            reset=False,
        )

    def _forward_output(self, X):
        acts = forward(
            self.coefs_, self.intercepts_, X, self.activation, self.out_activation_
        )
        return acts[-1]

    def _predict(self, X):
        proba = self._forward_output(X)
        if self.n_outputs_ == 1:
            proba = proba.ravel()
        return self._label_binarizer.inverse_transform(proba)

    # Training

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        snapshot = self._snapshot()
        try:
            self._training = True
            return self._fit_checked(X, y, sample_weight, incremental, classes)
        except BaseException:
            # A failed call (bad input, divergence, a dead worker, a second
            # Ctrl-C) leaves the estimator as it was before the call.
            self._restore(snapshot)
            raise
        finally:
            self.__dict__.pop("_training", None)

    def _fit_checked(self, X, y, sample_weight, incremental, classes):
        hidden = check_hidden_layer_sizes(self.hidden_layer_sizes)
        fitted = hasattr(self, "coefs_")
        first_pass = not fitted or not (self.warm_start or incremental)
        if incremental and first_pass and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")

        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            dtype=(np.float64, np.float32),
            multi_output=True,
            reset=first_pass,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not first_pass:
            # Continue in the dtype the weights were fitted in.
            X = X.astype(self.coefs_[0].dtype, copy=False)
        if sp.issparse(X):
            X = X.tocsr()
        Y = self._encode_targets(y, first_pass, classes, X.dtype, incremental)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
            check_sample_weight_values(sample_weight)

        layer_units = [X.shape[1], *hidden, Y.shape[1]]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(layer_units, X.dtype)
        else:
            self._check_layout(layer_units)
        hooks = FitHooks(
            self,
            "partial_fit" if incremental else "fit",
            1 if incremental else self.max_iter,
            X,
            y,
            sample_weight,
        )
        hooks.begin()
        self._fit_stochastic(X, y, Y, sample_weight, incremental, hooks)
        hooks.end()
        return self

    def _encode_targets(self, y, first_pass, classes, dtype, incremental):
        """Fit or check the label binarizer; return Y as a float matrix."""
        if first_pass:
            self._label_binarizer = LabelBinarizer()
            given = classes is not None and not type_of_target(y).startswith(
                "multilabel"
            )
            self._label_binarizer.fit(np.asarray(classes) if given else y)
            self.classes_ = self._label_binarizer.classes_
            if given:
                self._check_labels_known(y)
            self._multilabel = self._label_binarizer.y_type_.startswith("multilabel")
            if len(self.classes_) < 2:
                raise ValueError(
                    "MLPClassifier needs samples of at least 2 classes in the data, "
                    f"but the data contains only one class: {self.classes_[0]!r}."
                )
        else:
            if classes is not None and not np.array_equal(
                np.unique(np.asarray(classes)), np.unique(self.classes_)
            ):
                raise ValueError(
                    f"classes={np.asarray(classes)!r} is not the same as on the "
                    f"first call to partial_fit, which was {self.classes_!r}."
                )
            if not self._multilabel:
                self._check_labels_known(y)
            if not incremental and not self._multilabel:
                seen = np.unique(y)
                if not np.array_equal(seen, np.unique(self.classes_)):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously got "
                        f"{self.classes_}, `y` has {seen}."
                    )
        Y = self._label_binarizer.transform(y)
        Y = Y.toarray() if sp.issparse(Y) else Y
        return np.asarray(Y, dtype=dtype)

    def _check_labels_known(self, y):
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(
                "`y` has classes not in `self.classes_`. `self.classes_` has "
                f"{self.classes_}. 'y' has {np.unique(y)}; unknown: {unknown}."
            )

    def _initialize(self, layer_units, dtype):
        """Draw the weights and reset every fitted attribute."""
        self._fit_dtype = dtype
        self._layout = Layout(layer_units)
        coefs, intercepts = initialize_weights(
            self.initializer, layer_units, self._random_state, dtype
        )
        self._set_params_buffer(self._layout.pack(coefs, intercepts, dtype))
        self.n_layers_ = len(layer_units)
        self.n_outputs_ = layer_units[-1]
        binary = self._label_binarizer.y_type_ == "binary"
        self.out_activation_ = "logistic" if binary or self._multilabel else "softmax"
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._optimizer_buffers = None
        self._learning_rate = self.learning_rate_init
        self._no_improvement_count = 0
        self.best_loss_ = np.inf
        self.validation_scores_ = None
        self.best_validation_score_ = None

    def _fitted_attributes(self):
        """Copies of what a fitted estimator as of now needs (for callbacks)."""
        attributes = {
            "coefs_": [c.copy() for c in self.coefs_],
            "intercepts_": [b.copy() for b in self.intercepts_],
            "loss_curve_": list(self.loss_curve_),
        }
        for name in ("n_iter_", "t_", "loss_", "best_loss_", "best_validation_score_"):
            if hasattr(self, name):
                attributes[name] = getattr(self, name)
        scores = getattr(self, "validation_scores_", None)
        attributes["validation_scores_"] = None if scores is None else list(scores)
        return attributes

    def __copy__(self):
        # A shallow copy shares no worker pool and no training buffer with the
        # original, so training one never moves the other's weights.
        new = type(self).__new__(type(self))
        new.__dict__.update(
            (k, v) for k, v in self.__dict__.items() if k not in _PROCESS_BOUND
        )
        if hasattr(self, "coefs_"):
            new.coefs_ = [c.copy() for c in self.coefs_]
            new.intercepts_ = [b.copy() for b in self.intercepts_]
        for key in ("loss_curve_", "validation_scores_"):
            if isinstance(getattr(self, key, None), list):
                setattr(new, key, list(getattr(self, key)))
        if getattr(self, "_optimizer_buffers", None) is not None:
            new._optimizer_buffers = self._optimizer_buffers.copy()
        return new

    def _set_params_buffer(self, params):
        self._params = params
        self.coefs_, self.intercepts_ = self._layout.views(params)

    def _check_layout(self, layer_units):
        """Continue training only on a network of the same shape."""
        fitted_units = [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]
        if fitted_units != list(layer_units):
            raise ValueError(
                "The network's layer sizes changed since the last fit: "
                f"{fitted_units} before, {list(layer_units)} now. Set "
                "warm_start=False, or keep hidden_layer_sizes and the data's "
                "features and classes as they were."
            )
        self._fit_dtype = self.coefs_[0].dtype
        self._layout = Layout(layer_units)
        params = getattr(self, "_params", None)
        shares = params is not None and all(
            np.shares_memory(a, params) for a in self.coefs_ + self.intercepts_
        )
        if not shares:
            self._set_params_buffer(
                self._layout.pack(self.coefs_, self.intercepts_, self._fit_dtype)
            )

    def _snapshot(self):
        """Copy the estimator's state, to undo a failed training call."""
        state = {k: v for k, v in vars(self).items() if k not in ("_pool", "_training")}
        for key in ("loss_curve_", "validation_scores_"):
            if isinstance(state.get(key), list):
                state[key] = list(state[key])
        # Training changes these arrays in place (coefs_ are views of _params).
        in_place = [
            (state[key], state[key].copy())
            for key in ("_params", "_optimizer_buffers")
            if state.get(key) is not None
        ]
        return state, in_place

    def _restore(self, snapshot):
        state, in_place = snapshot
        self._close_pool()
        for array, saved in in_place:
            array[...] = saved
        # The callback framework tears down after the call: keep its context.
        live = {k: v for k, v in vars(self).items() if k in _CALLBACK_STATE}
        self.__dict__.clear()
        self.__dict__.update(state)
        self.__dict__.update(live)

    def _fit_stochastic(self, X, y, Y, sample_weight, incremental, hooks):
        optimizer = resolve_optimizer(self.optimizer, self.momentum)
        n_buffers = int(optimizer.n_buffers)
        if not incremental:
            self._learning_rate = self.learning_rate_init
            self._no_improvement_count = 0
        buffers = getattr(self, "_optimizer_buffers", None)
        if not incremental or buffers is None or buffers.shape[0] != n_buffers:
            buffers = np.zeros((n_buffers, self._layout.n_params), self._fit_dtype)
            self._optimizer_buffers = buffers

        early_stopping = self.early_stopping and not incremental
        val = None
        if early_stopping:
            split = validation_split(
                X,
                y,
                Y,
                sample_weight,
                self.validation_fraction,
                not self._multilabel,
                self._random_state,
            )
            if split is not None:
                (X, _, Y, sample_weight), val = split
                X_val, y_val, _, sw_val = val
                hooks.monitor(X_val, y_val, sw_val)
            early_stopping = split is not None
        if not incremental:
            self._start_monitoring(early_stopping)

        n_samples = X.shape[0]
        batch_size = self._batch_size(n_samples)
        problem = Problem(
            self._layout, self.activation, self.out_activation_, self.alpha, optimizer
        )
        data = (X, Y, sample_weight)
        # Overflow is caught as divergence below, not reported by numpy. On
        # an error, _fit's restore closes the worker pool.
        with (
            _interrupt_flag() as stop,
            single_blas_thread(),
            np.errstate(over="ignore", invalid="ignore"),
        ):
            engine = self._engine(problem, data, batch_size, incremental)
            stopped = self._run_epochs(
                engine, n_samples, batch_size, incremental, val, stop, hooks
            )
        if not incremental:
            self._close_pool()

        if early_stopping:
            # A fit that Ctrl-C or a callback stopped keeps its last step.
            if not stopped:
                self._params[...] = self._best_params
            del self._best_params
        if not np.isfinite(self._params).all():
            raise ValueError(
                "Training produced non-finite weights. The learning rate "
                f"(learning_rate_init={self.learning_rate_init!r}) may be too "
                "large, or the input data may need scaling."
            )

    def _engine(self, problem, data, batch_size, incremental):
        """The serial engine, or the worker pool (reused by partial_fit)."""
        n_workers = n_workers_for(self.n_jobs)
        if n_workers > 1:
            reason = reason_not_to_start()
            if reason is not None:
                warn_in_process(reason)
                n_workers = 1
        if n_workers == 1:
            self._close_pool()
            return SerialEngine(problem, data)
        pool = getattr(self, "_pool", None)
        if pool is None or not pool.alive or pool.n_workers != n_workers:
            self._close_pool()
            pool = WorkerPool(n_workers)
            pool.start(inherited_data=None if incremental else data)
            self._pool = pool
        pool.setup(problem, data, batch_size)
        return pool

    def _close_pool(self):
        pool = self.__dict__.pop("_pool", None)
        if pool is not None:
            pool.close()

    def _start_monitoring(self, early_stopping):
        """Reset what the stopping rule tracks at the start of ``fit``."""
        self.n_iter_ = 0
        if early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
            self._best_params = self._params.copy()
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warn_user(
                f"Got batch_size={self.batch_size} larger than the number of "
                f"training samples ({n_samples}); it is clipped to {n_samples}.",
                UserWarning,
            )
        return min(self.batch_size, n_samples)

    def _run_epochs(self, engine, n_samples, batch_size, incremental, val, stop, hooks):
        """The epoch loop: one pass of the engine, then the bookkeeping.

        Returns whether Ctrl-C or a callback ended it.
        """
        n_epochs = 1 if incremental else self.max_iter
        for _ in range(n_epochs):
            hooks.begin_epoch()
            if self.shuffle:
                order = self._random_state.permutation(n_samples)
            else:
                order = np.arange(n_samples)
            result = engine.run_epoch(
                self._params,
                self._optimizer_buffers,
                order,
                batch_size,
                self._learning_rate,
                stop,
            )
            self.t_ += result.n_seen
            if result.diverged:
                raise ValueError(
                    f"Training diverged in epoch {self.n_iter_ + 1}: the loss became "
                    "NaN or infinite. The learning rate "
                    f"(learning_rate_init={self.learning_rate_init!r}) is likely too "
                    "large; lower it, or scale the input data (for example with "
                    "StandardScaler)."
                )
            # Ctrl-C may also land after the engine's last check of an epoch.
            if result.interrupted or stop():
                hooks.abandon_epoch()
                warn_user(
                    "Training interrupted by user; keeping the weights of the last "
                    "finished step.",
                    UserWarning,
                )
                return True
            self._end_epoch(result, val)
            if hooks.end_epoch():
                self._report(f"A callback stopped training after epoch {self.n_iter_}.")
                return True
            if self._should_stop(val is not None, incremental):
                self._warn_if_diverged()
                return False
        if not incremental:
            self._warn_if_diverged()
            warn_user(
                f"Stochastic optimizer: maximum iterations ({self.max_iter}) reached "
                "and the optimization hasn't converged yet. Increase max_iter, or "
                "the learning rate.",
                ConvergenceWarning,
            )
        return False

    def _warn_if_diverged(self):
        """Warn when a fit ends far worse than a constant guess would do."""
        if self.out_activation_ == "softmax":
            guess = np.log(self.n_outputs_)
        else:
            guess = self.n_outputs_ * np.log(2)
        if self.loss_curve_ and self.loss_curve_[-1] > 10 * guess:
            warn_user(
                f"The training loss ended at {self.loss_curve_[-1]:.4g}, more than "
                f"ten times that of a constant guess ({guess:.3g}): training "
                "diverged, though without overflowing. The learning rate "
                f"(learning_rate_init={self.learning_rate_init!r}) is likely too "
                "large; lower it, or scale the input data (for example with "
                "StandardScaler).",
                ConvergenceWarning,
            )

    def _end_epoch(self, result, val):
        """Record the epoch's loss and validation score; update the rate."""
        self.n_iter_ += 1
        self.loss_ = result.loss_sum / result.n_rows if result.n_rows else np.nan
        self.loss_curve_.append(self.loss_)
        message = f"Epoch {self.n_iter_}, loss = {self.loss_:.8f}"
        if val is not None:
            X_val, y_val, _, sw_val = val
            score = accuracy_score(y_val, self._predict(X_val), sample_weight=sw_val)
            self.validation_scores_.append(score)
            message += f", validation score = {score:.6f}"
            improved = score > self.best_validation_score_ + self.tol
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params[...] = self._params
        else:
            if self.best_loss_ is None:
                # partial_fit after an early-stopped fit monitors the loss.
                self.best_loss_ = np.inf
            improved = self.loss_ < self.best_loss_ - self.tol
            self.best_loss_ = min(self.best_loss_, self.loss_)
        self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
        self._report(message)
        if self.learning_rate == "invscaling":
            self._learning_rate = (
                self.learning_rate_init / (self.t_ + 1) ** self.power_t
            )

    def _should_stop(self, on_validation, incremental):
        """Apply the stopping rule after an epoch; may shrink the rate.

        partial_fit never stops (its caller decides), but may shrink the rate.
        """
        if self._no_improvement_count < self.n_iter_no_change:
            return False
        what = "Validation score" if on_validation else "Training loss"
        message = (
            f"{what} did not improve more than tol={self.tol} for "
            f"{self.n_iter_no_change} consecutive epochs."
        )
        if self.learning_rate == "adaptive" and self._learning_rate > 1e-6:
            self._learning_rate /= 5.0
            self._no_improvement_count = 0
            self._report(f"{message} Setting learning rate to {self._learning_rate:g}.")
            return False
        if incremental:
            return False
        self._report(f"{message} Stopping.")
        return True

    def _report(self, message):
        """The estimator's one writer: a line on stdout when verbose."""
        if self.verbose:
            print(message, flush=True)


# What stays with this process: the worker pool, the flat training buffer
# (rebuilt from coefs_ when needed) and the flag of a running fit.
_PROCESS_BOUND = ("_pool", "_params", "_training")

# The Ctrl-C flag of the training call running in the main thread, if any.
_ACTIVE_FLAG = []

# What scikit-learn's callback framework keeps on the estimator during a call.
_CALLBACK_STATE = ("_callback_fit_ctx", "_skl_callbacks_to_teardown")


@contextmanager
def _interrupt_flag():
    """Turn the first Ctrl-C into a flag that the epoch loop polls.

    Yields a callable that tells whether Ctrl-C was pressed. A second Ctrl-C
    raises KeyboardInterrupt at once. Only Python's default handler is
    replaced: a program that ignores SIGINT, or handles it its own way, keeps
    its handler. Outside the main thread, where no signal arrives, the flag
    stays false.
    """
    if _ACTIVE_FLAG and threading.current_thread() is threading.main_thread():
        # Nested in another training call (fit_stream's partial_fit calls):
        # one Ctrl-C stops them all.
        yield _ACTIVE_FLAG[-1]
        return
    pressed = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield lambda: False
        return

    def on_sigint(signum, frame):
        if pressed:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        pressed.append(True)

    signal.signal(signal.SIGINT, on_sigint)
    _ACTIVE_FLAG.append(lambda: bool(pressed))
    try:
        yield _ACTIVE_FLAG[-1]
    finally:
        _ACTIVE_FLAG.pop()
        signal.signal(signal.SIGINT, previous)
