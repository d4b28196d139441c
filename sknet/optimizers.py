"""Update rules: how a gradient moves the parameters.

An optimizer is an object that derives from :class:`BaseOptimizer`. It says
how many state arrays it keeps (``n_buffers``; momentum keeps one, the
velocity) and implements ``update(params, grad, buffers, learning_rate)``,
which moves ``params`` in place.

The update must be **element-wise**: each coordinate of the result may depend
only on the same coordinate of ``params``, ``grad`` and each buffer. The
training engine relies on this to split an update over worker processes, by
calling ``update`` on slices of the arrays. Adam-style rules are element-wise
(a rule that needs the step count, as Adam's bias correction does, can keep
it in one of its buffers, every element holding the same count); rules that
need a norm of the whole gradient are not.

The learning-rate schedule (``learning_rate``, ``power_t``) and the L2 term
(``alpha``) are the estimator's: ``grad`` already holds the regularised
mean gradient of the batch, and ``learning_rate`` the rate of the current
epoch.

==============  ==================  =====================================
name            class               update, with velocity ``v``
==============  ==================  =====================================
``'sgd'``       :class:`SGD`        ``p -= lr * g``
``'momentum'``  :class:`Momentum`   ``v = m * v - lr * g; p += v``
``'nesterov'``  :class:`Nesterov`   ``v = m * v - lr * g; p += m * v - lr * g``
==============  ==================  =====================================
"""

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["BaseOptimizer", "SGD", "Momentum", "Nesterov", "OPTIMIZERS"]


class BaseOptimizer(BaseEstimator):
    """Base class for optimizers.

    It takes no parameters of its own; a subclass's ``__init__`` stores the
    parameters it has, as attributes of the same names.

    Subclasses set the class attribute ``n_buffers`` and implement
    :meth:`update`. Their ``__init__`` only stores its arguments, so that
    ``clone``, ``get_params``/``set_params`` (also nested, as
    ``optimizer__momentum``) and pickling work. The estimator never changes
    the optimizer object: the per-fit state lives in the ``buffers`` it
    allocates and passes to :meth:`update`.

    Attributes
    ----------
    n_buffers : int
        Number of state arrays, each shaped as the parameters and zero at the
        start of a fit.

    Examples
    --------
    A sign-SGD rule, element-wise as required:

    >>> import numpy as np
    >>> from sknet.optimizers import BaseOptimizer
    >>> class SignSGD(BaseOptimizer):
    ...     n_buffers = 0
    ...     def update(self, params, grad, buffers, learning_rate):
    ...         params -= learning_rate * np.sign(grad)
    >>> p = np.array([1.0, 1.0])
    >>> SignSGD().update(p, np.array([0.3, -2.0]), [], 0.5)
    >>> p
    array([0.5, 1.5])
    """

    n_buffers = 0

    def update(self, params, grad, buffers, learning_rate):
        """Move ``params`` in place by one step.

        Parameters
        ----------
        params : ndarray of shape (n,)
            Parameters (or a slice of them) to update in place.
        grad : ndarray of shape (n,)
            Gradient of the batch's loss at ``params``. The method may
            overwrite it.
        buffers : list of ndarray of shape (n,)
            ``n_buffers`` state arrays, updated in place.
        learning_rate : float
            Step size of the current epoch.

        Returns
        -------
        None
            The update happens in place; returning anything else is an error.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement "
            "update(params, grad, buffers, learning_rate)."
        )

    def _check_momentum(self):
        if not isinstance(self.momentum, Real) or not 0 <= self.momentum <= 1:
            raise ValueError(
                f"The 'momentum' parameter of {type(self).__name__} must be a "
                f"float in the range [0, 1]. Got {self.momentum!r} instead."
            )


class SGD(BaseOptimizer):
    """Plain stochastic gradient descent: ``p -= lr * g``.

    It takes no parameters and keeps no state.

    Attributes
    ----------
    n_buffers : int
        0: plain SGD keeps no state between steps.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.optimizers import SGD
    >>> p = np.array([1.0, 2.0])
    >>> SGD().update(p, np.array([1.0, -1.0]), [], 0.1)
    >>> p
    array([0.9, 2.1])
    """

    n_buffers = 0

    def update(self, params, grad, buffers, learning_rate):
        grad *= learning_rate
        params -= grad


class Momentum(BaseOptimizer):
    """Gradient descent with (heavy-ball) momentum.

    ``v = momentum * v - lr * g``, then ``p += v``, with ``v`` zero at the
    start of a fit [1]_.

    Parameters
    ----------
    momentum : float, default=0.9
        Fraction of the previous step kept, in [0, 1]. Zero is plain SGD.

    Attributes
    ----------
    n_buffers : int
        1: the velocity ``v``.

    References
    ----------
    .. [1] B. T. Polyak, "Some methods of speeding up the convergence of
       iteration methods", USSR Computational Mathematics and Mathematical
       Physics, 4(5), 1964.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.optimizers import Momentum
    >>> p, v = np.array([1.0]), np.array([0.5])
    >>> Momentum(momentum=0.9).update(p, np.array([1.0]), [v], 0.1)
    >>> p, v
    (array([1.35]), array([0.35]))
    """

    n_buffers = 1

    def __init__(self, momentum=0.9):
        self.momentum = momentum

    def update(self, params, grad, buffers, learning_rate):
        self._check_momentum()
        (velocity,) = buffers
        grad *= learning_rate
        velocity *= self.momentum
        velocity -= grad
        params += velocity


class Nesterov(BaseOptimizer):
    """Nesterov's accelerated gradient, in the form evaluated at ``p``.

    ``v = momentum * v - lr * g``, then ``p += momentum * v - lr * g``.

    Nesterov's method evaluates the gradient at the look-ahead point
    ``p + momentum * v``. Tracking that point instead of ``p`` turns the
    look-ahead method into the update above, in which the gradient is taken
    at the current parameters [1]_ [2]_; both produce the same sequence of
    look-ahead points. scikit-learn's ``nesterovs_momentum=True`` uses the
    same form.

    Parameters
    ----------
    momentum : float, default=0.9
        Fraction of the previous step kept, in [0, 1].

    Attributes
    ----------
    n_buffers : int
        1: the velocity ``v``.

    References
    ----------
    .. [1] Y. Nesterov, "A method of solving a convex programming problem
       with convergence rate O(1/k^2)", Soviet Mathematics Doklady, 27, 1983.
    .. [2] I. Sutskever, J. Martens, G. Dahl and G. Hinton, "On the
       importance of initialization and momentum in deep learning",
       ICML 2013.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.optimizers import Nesterov
    >>> p, v = np.array([1.0]), np.array([0.5])
    >>> Nesterov(momentum=0.9).update(p, np.array([1.0]), [v], 0.1)
    >>> p.round(3), v
    (array([1.215]), array([0.35]))
    """

    n_buffers = 1

    def __init__(self, momentum=0.9):
        self.momentum = momentum

    def update(self, params, grad, buffers, learning_rate):
        self._check_momentum()
        (velocity,) = buffers
        grad *= learning_rate
        velocity *= self.momentum
        velocity -= grad
        params -= grad
        params += np.multiply(velocity, self.momentum, out=grad)


#: The optimizer classes by the names ``MLPClassifier(optimizer=...)`` accepts.
OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov}
