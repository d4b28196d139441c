"""scikit-learn's estimator checks, run on several MLPClassifier configurations."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sknet import MLPClassifier
from sknet.initializers import HeUniform
from sknet.optimizers import Nesterov

CONFIGURATIONS = [
    MLPClassifier(),
    MLPClassifier(optimizer="sgd"),
    MLPClassifier(optimizer="momentum"),
    MLPClassifier(optimizer="nesterov"),
    MLPClassifier(initializer="he_normal"),
    MLPClassifier(initializer="lecun_uniform"),
    MLPClassifier(initializer="random"),
    MLPClassifier(early_stopping=True),
    MLPClassifier(optimizer=Nesterov(momentum=0.5), initializer=HeUniform()),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore:early_stopping:UserWarning")
@parametrize_with_checks(CONFIGURATIONS, expected_failed_checks=lambda est: {})
def test_sklearn_estimator_checks(estimator, check):
    """MLPClassifier passes scikit-learn's estimator checks."""
    check(estimator)
