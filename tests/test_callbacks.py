"""sknet's support of scikit-learn's callback framework."""

import importlib
import os
import sys

import numpy as np
import pytest
from sklearn.callback import ProgressBar, ScoringMonitor
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sknet._callbacks
from sknet import MLPClassifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


class Recorder:
    """Records every hook call: (hook, task name, task id, estimator pid)."""

    def __init__(self, stop_at=None, want_estimator=False):
        self.stop_at = stop_at
        self.want_estimator = want_estimator
        self.events = []
        self.fitted = {}

    def setup(self, estimator, context):
        self.events.append(("setup", context.task_name))

    def teardown(self, estimator, context):
        self.events.append(("teardown", context.task_name))

    def on_fit_task_begin(self, estimator, context, *, X=None, y=None):
        self.events.append(("begin", context.task_name, context.task_id, os.getpid()))

    def on_fit_task_end(
        self, estimator, context, *, X=None, y=None, fitted_estimator=None
    ):
        self.events.append(("end", context.task_name, context.task_id, os.getpid()))
        if context.task_name == "epoch":
            self.fitted[context.task_id] = fitted_estimator
            return self.stop_at is not None and context.task_id + 1 >= self.stop_at
        return False


class Raiser(Recorder):
    """Raises in the end hook of the third epoch."""

    def on_fit_task_end(self, estimator, context, *, X=None, y=None):
        if context.task_name == "epoch" and context.task_id == 2:
            raise ZeroDivisionError("callback failed on purpose")
        return False


def _clf(**params):
    defaults = dict(
        hidden_layer_sizes=(8,),
        learning_rate_init=0.05,
        max_iter=6,
        tol=0.0,
        n_iter_no_change=np.inf,
        random_state=0,
    )
    return MLPClassifier(**{**defaults, **params})


def _hooks(recorder):
    return [e[:2] for e in recorder.events]


def test_fit_events_are_root_then_one_pair_per_epoch(multiclass_data):
    """fit: setup, fit begins, each epoch begins and ends, fit ends, teardown."""
    X, y = multiclass_data
    recorder = Recorder()
    _clf().set_callbacks(recorder).fit(X, y)
    expected = [("setup", "fit"), ("begin", "fit")]
    expected += [("begin", "epoch"), ("end", "epoch")] * 6
    expected += [("end", "fit"), ("teardown", "fit")]
    assert _hooks(recorder) == expected
    epoch_ids = [e[2] for e in recorder.events if e[:2] == ("end", "epoch")]
    assert epoch_ids == list(range(6))


def test_partial_fit_events_are_one_epoch_per_call(multiclass_data):
    """Each partial_fit call is a root task with exactly one epoch."""
    X, y = multiclass_data
    recorder = Recorder()
    clf = _clf().set_callbacks(recorder)
    for _ in range(3):
        clf.partial_fit(X, y, classes=np.unique(y))
    one_call = [
        ("setup", "partial_fit"),
        ("begin", "partial_fit"),
        ("begin", "epoch"),
        ("end", "epoch"),
        ("end", "partial_fit"),
        ("teardown", "partial_fit"),
    ]
    assert _hooks(recorder) == one_call * 3


def test_warm_start_fit_counts_its_own_epochs(multiclass_data):
    """A warm-started fit is a new root task whose epochs count from 0."""
    X, y = multiclass_data
    recorder = Recorder()
    clf = _clf(warm_start=True, max_iter=3).set_callbacks(recorder)
    clf.fit(X, y)
    clf.fit(X, y)
    ends = [e[2] for e in recorder.events if e[:2] == ("end", "epoch")]
    assert ends == [0, 1, 2, 0, 1, 2]
    assert len(clf.loss_curve_) == 6


def test_callback_stop_request_ends_training_at_that_epoch(multiclass_data):
    """A True from on_fit_task_end stops after that epoch, keeping its weights."""
    X, y = multiclass_data
    recorder = Recorder(stop_at=3, want_estimator=True)
    clf = _clf(max_iter=50).set_callbacks(recorder)
    clf.fit(X, y)
    assert clf.n_iter_ == 3
    reference = _clf(max_iter=3).fit(X, y)
    for got, want in zip(clf.coefs_, reference.coefs_):
        np.testing.assert_array_equal(got, want)


def test_callback_stop_with_early_stopping_keeps_the_last_epoch(multiclass_data):
    """Stopped by a callback, early stopping does not swap in its best epoch."""
    X, y = multiclass_data
    recorder = Recorder(stop_at=4)
    clf = _clf(max_iter=50, early_stopping=True, validation_fraction=0.25)
    clf.set_callbacks(recorder).fit(X, y)
    assert clf.n_iter_ == 4
    last = recorder.fitted[3]
    for got, want in zip(clf.coefs_, last.coefs_):
        np.testing.assert_array_equal(got, want)


def test_fitted_estimator_predicts_as_of_its_epoch(multiclass_data):
    """The fitted_estimator of epoch k predicts like a fit stopped after k + 1."""
    X, y = multiclass_data
    recorder = Recorder()
    _clf(max_iter=5).set_callbacks(recorder).fit(X, y)
    for k in (0, 2, 4):
        reference = _clf(max_iter=k + 1).fit(X, y)
        np.testing.assert_array_equal(
            recorder.fitted[k].predict_proba(X), reference.predict_proba(X)
        )
        assert recorder.fitted[k].n_iter_ == k + 1


def test_fitted_estimator_is_not_built_when_no_callback_asks(
    multiclass_data, monkeypatch
):
    """Without a hook that takes fitted_estimator, no weights are copied."""
    X, y = multiclass_data
    calls = []
    original = MLPClassifier._fitted_attributes

    def counting(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(MLPClassifier, "_fitted_attributes", counting)

    class NoEstimator(Recorder):
        def on_fit_task_end(self, estimator, context, *, X=None, y=None):
            return False

    _clf().set_callbacks(NoEstimator()).fit(X, y)
    assert calls == []
    _clf().set_callbacks(Recorder()).fit(X, y)
    assert len(calls) == 6 + 1


def test_fitted_estimator_does_not_move_with_training(multiclass_data):
    """An epoch's fitted_estimator keeps its weights while training goes on."""
    X, y = multiclass_data
    recorder = Recorder()
    clf = _clf().set_callbacks(recorder).fit(X, y)
    first = recorder.fitted[0].coefs_[0]
    assert not np.array_equal(first, clf.coefs_[0])
    assert not np.shares_memory(first, clf.coefs_[0])


def test_scoring_monitor_records_validation_score_and_loss(multiclass_data):
    """With early stopping, the monitor sees the held-out split and the loss."""
    X, y = multiclass_data
    monitor = ScoringMonitor(
        scoring={"accuracy": "accuracy", "loss": lambda est, X, y: est.loss_}
    )
    clf = _clf(early_stopping=True, validation_fraction=0.25)
    clf.set_callbacks(monitor).fit(X, y)
    rows = [r for r in monitor.get_logs().data if r["task_name"] == "epoch"]
    assert [r["accuracy"] for r in rows] == clf.validation_scores_
    assert [r["loss"] for r in rows] == clf.loss_curve_


def test_callbacks_run_in_the_calling_process_with_workers(multiclass_data):
    """With n_jobs=2 the hooks still run in this process, and weights agree."""
    X, y = multiclass_data
    recorder = Recorder()
    clf = _clf(n_jobs=2).set_callbacks(recorder).fit(X, y)
    pids = {e[3] for e in recorder.events if e[0] in ("begin", "end")}
    assert pids == {os.getpid()}
    reference = _clf().fit(X, y)
    for got, want in zip(clf.coefs_, reference.coefs_):
        np.testing.assert_array_equal(got, want)


def test_raising_callback_stops_a_parallel_fit_cleanly(multiclass_data):
    """A callback's error ends the fit, releases workers and is re-raised."""
    import multiprocessing

    X, y = multiclass_data
    clf = _clf(n_jobs=2).set_callbacks(Raiser())
    with pytest.raises(ZeroDivisionError, match="on purpose"):
        clf.fit(X, y)
    assert not [
        p for p in multiprocessing.active_children() if p.name.startswith("sknet")
    ]
    with pytest.raises(NotFittedError):
        clf.predict(X)
    assert "_callback_fit_ctx" not in vars(clf)


def test_progress_bar_runs_in_a_fit(multiclass_data):
    """ProgressBar accepts sknet's task tree in a plain fit."""
    X, y = multiclass_data
    clf = _clf().set_callbacks(ProgressBar()).fit(X, y)
    assert clf.n_iter_ == 6


def test_progress_bar_runs_in_a_grid_search_over_a_pipeline(multiclass_data):
    """ProgressBar nests sknet's epochs inside GridSearchCV and a Pipeline."""
    X, y = multiclass_data
    search = GridSearchCV(
        make_pipeline(StandardScaler(), _clf(max_iter=3)),
        {"mlpclassifier__alpha": [1e-4, 1e-2]},
        cv=2,
    )
    search.set_callbacks(ProgressBar())
    search.fit(X, y)
    assert set(search.cv_results_["param_mlpclassifier__alpha"]) == {1e-4, 1e-2}


def test_set_callbacks_without_the_framework_raises(monkeypatch):
    """With a scikit-learn that lacks sklearn.callback, the error names 1.9."""
    monkeypatch.setitem(sys.modules, "sklearn.callback", None)
    try:
        stand_in = importlib.reload(sknet._callbacks)
        assert not stand_in.HAS_CALLBACKS
        with pytest.raises(NotImplementedError, match=r"scikit-learn >= 1\.9"):
            stand_in.CallbackSupportMixin().set_callbacks(Recorder())
        hooks = stand_in.FitHooks(_clf(), "fit", 3, None, None, None)
        hooks.begin()
        hooks.begin_epoch()
        assert hooks.end_epoch() is False
        hooks.end()
    finally:
        monkeypatch.undo()
        importlib.reload(sknet._callbacks)
    assert sknet._callbacks.HAS_CALLBACKS
