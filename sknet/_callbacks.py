"""Support for scikit-learn's callback framework (``sklearn.callback``).

scikit-learn 1.9 added the framework. With an older scikit-learn the
estimator still works; only ``set_callbacks`` refuses, naming the version it
needs.

A ``fit`` is the root task and each epoch one subtask, a leaf: the batches of
an epoch may run in worker processes, while callbacks always run in the
calling process, between epochs.
"""

import sklearn

try:
    from sklearn.callback import CallbackSupportMixin, with_callbacks

    HAS_CALLBACKS = True
except ImportError:  # scikit-learn < 1.9
    HAS_CALLBACKS = False

    class CallbackSupportMixin:
        """Stand-in for scikit-learn's mixin where the framework is missing."""

        def set_callbacks(self, *callbacks):
            """Set callbacks; needs scikit-learn's callback framework.

            Parameters
            ----------
            *callbacks : callback instances
                The callbacks to set.

            Returns
            -------
            self : estimator instance
                Never returns: raises instead.
            """
            raise NotImplementedError(
                "set_callbacks needs scikit-learn >= 1.9, whose sklearn.callback "
                f"module provides the callback framework; scikit-learn "
                f"{sklearn.__version__} is installed."
            )

    def with_callbacks(method):
        return method


class _NoContext:
    """Takes the framework's calls and does nothing, where it is missing."""

    def subcontext(self, **kwargs):
        return self

    def call_on_fit_task_begin(self, **kwargs):
        return self

    def call_on_fit_task_end(self, **kwargs):
        return False


class FitHooks:
    """The callback calls of one ``fit`` or ``partial_fit``.

    Parameters
    ----------
    estimator : MLPClassifier
        The estimator being trained.
    task_name : str
        'fit' or 'partial_fit'.
    max_epochs : int
        Most epochs the call can run.
    X, y, sample_weight
        What the hooks receive: the validation split when early stopping
        holds one out, else the training data.
    """

    def __init__(self, estimator, task_name, max_epochs, X, y, sample_weight):
        self.estimator = estimator
        if HAS_CALLBACKS:
            self.root = estimator._init_callback_context(
                task_name=task_name, max_subtasks=max_epochs
            )
        else:
            self.root = _NoContext()
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        self._data = dict(X=X, y=y, metadata=metadata)
        self._epoch = None

    def monitor(self, X, y, sample_weight):
        """Hand the hooks other data from now on (the validation split)."""
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        self._data = dict(X=X, y=y, metadata=metadata)

    def begin(self):
        self.root.call_on_fit_task_begin(estimator=self.estimator, **self._data)

    def end(self):
        self.root.call_on_fit_task_end(
            estimator=self.estimator,
            reconstruction_attributes=self.estimator._fitted_attributes,
            **self._data,
        )

    def begin_epoch(self):
        self._epoch = self.root.subcontext(task_name="epoch")
        self._epoch.call_on_fit_task_begin(
            estimator=self.estimator,
            reconstruction_attributes=self.estimator._fitted_attributes,
            **self._data,
        )

    def end_epoch(self):
        """End the epoch's task; return whether a callback asks to stop."""
        epoch, self._epoch = self._epoch, None
        return bool(
            epoch.call_on_fit_task_end(
                estimator=self.estimator,
                reconstruction_attributes=self.estimator._fitted_attributes,
                **self._data,
            )
        )

    def abandon_epoch(self):
        """End an epoch that did not finish, as an empty task."""
        if self._epoch is not None:
            self._epoch.call_on_fit_task_end(estimator=self.estimator)
            self._epoch = None
