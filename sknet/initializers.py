"""Weight initializers: how the first weights of each layer are drawn.

An initializer is any callable ``init(fan_in, fan_out, rng)`` that returns an
array of shape ``(fan_in, fan_out)``: the weights that connect a layer of
``fan_in`` units to one of ``fan_out`` units. ``rng`` is the
:class:`numpy.random.RandomState` of the fit, so a seeded ``random_state``
gives the same weights every time. Biases always start at zero.

The classes here draw from a normal or a uniform distribution whose variance
depends on the fan of the layer, and are also reachable by name through
``MLPClassifier(initializer=...)``:

========================  ==========================  =========================
name                      class                       variance of each weight
========================  ==========================  =========================
``'xavier_normal'``       :class:`XavierNormal`       2 / (fan_in + fan_out)
``'xavier_uniform'``      :class:`XavierUniform`      2 / (fan_in + fan_out)
``'lecun_normal'``        :class:`LeCunNormal`        1 / fan_in
``'lecun_uniform'``       :class:`LeCunUniform`       1 / fan_in
``'he_normal'``           :class:`HeNormal`           2 / fan_in
``'he_uniform'``          :class:`HeUniform`          2 / fan_in
``'random'``              :class:`RandomUniform`      scale**2 / 3 (scale 0.5)
========================  ==========================  =========================

A uniform draw with variance ``v`` lies in ``[-sqrt(3 v), sqrt(3 v)]``. Each
fan-scaled class takes a ``gain`` that multiplies the standard deviation.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator

__all__ = [
    "BaseInitializer",
    "XavierNormal",
    "XavierUniform",
    "LeCunNormal",
    "LeCunUniform",
    "HeNormal",
    "HeUniform",
    "RandomUniform",
    "INITIALIZERS",
]


class BaseInitializer(BaseEstimator):
    """Base class for weight initializers.

    It takes no parameters of its own; a subclass's ``__init__`` stores the
    parameters it has, as attributes of the same names.

    A subclass implements ``__call__(fan_in, fan_out, rng)`` and returns an
    ndarray of shape ``(fan_in, fan_out)``. Like a scikit-learn estimator, its
    ``__init__`` only stores its arguments, so that ``clone``,
    ``get_params``/``set_params`` (also nested, as
    ``initializer__gain``) and pickling work.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.initializers import BaseInitializer
    >>> class Constant(BaseInitializer):
    ...     def __init__(self, value=0.01):
    ...         self.value = value
    ...     def __call__(self, fan_in, fan_out, rng):
    ...         return np.full((fan_in, fan_out), self.value)
    >>> Constant(0.5)(2, 3, np.random.RandomState(0)).shape
    (2, 3)
    """

    def __call__(self, fan_in, fan_out, rng):
        """Draw the weights of one layer.

        Parameters
        ----------
        fan_in : int
            Number of units feeding the layer.
        fan_out : int
            Number of units in the layer.
        rng : numpy.random.RandomState
            Source of randomness; draw from nothing else.

        Returns
        -------
        weights : ndarray of shape (fan_in, fan_out)
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement __call__(fan_in, fan_out, rng)."
        )


class _FanScaled(BaseInitializer):
    """Zero-mean draws whose variance is ``gain**2 * variance(fan_in, fan_out)``."""

    _distribution = "normal"

    def __init__(self, gain=1.0):
        self.gain = gain

    def _variance(self, fan_in, fan_out):
        raise NotImplementedError

    def __call__(self, fan_in, fan_out, rng):
        if not isinstance(self.gain, numbers.Real) or not self.gain > 0:
            raise ValueError(
                f"The 'gain' parameter of {type(self).__name__} must be a float "
                f"> 0. Got {self.gain!r} instead."
            )
        std = self.gain * np.sqrt(self._variance(fan_in, fan_out))
        if self._distribution == "normal":
            return rng.normal(0.0, std, size=(fan_in, fan_out))
        limit = np.sqrt(3.0) * std
        return rng.uniform(-limit, limit, size=(fan_in, fan_out))


class _Glorot(_FanScaled):
    def _variance(self, fan_in, fan_out):
        return 2.0 / (fan_in + fan_out)


class _LeCun(_FanScaled):
    def _variance(self, fan_in, fan_out):
        return 1.0 / fan_in


class _He(_FanScaled):
    def _variance(self, fan_in, fan_out):
        return 2.0 / fan_in


class XavierNormal(_Glorot):
    """Xavier (Glorot) normal: variance ``2 / (fan_in + fan_out)``.

    Keeps the variance of activations and of gradients alike from layer to
    layer for symmetric activations such as tanh [1]_.

    Parameters
    ----------
    gain : float, default=1.0
        Multiplies the standard deviation.

    Attributes
    ----------
    gain : float
        The ``gain`` given, used as it is at each call.

    References
    ----------
    .. [1] X. Glorot and Y. Bengio, "Understanding the difficulty of training
       deep feedforward neural networks", AISTATS 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.initializers import XavierNormal
    >>> W = XavierNormal()(400, 400, np.random.RandomState(0))
    >>> round(float(W.var()) * 400, 1)
    1.0
    """


class XavierUniform(_Glorot):
    """Xavier (Glorot) uniform: in ``±sqrt(6 / (fan_in + fan_out))``.

    The uniform form of :class:`XavierNormal`, with the same variance [1]_.

    Parameters
    ----------
    gain : float, default=1.0
        Multiplies the bound.

    Attributes
    ----------
    gain : float
        The ``gain`` given, used as it is at each call.

    References
    ----------
    .. [1] X. Glorot and Y. Bengio, "Understanding the difficulty of training
       deep feedforward neural networks", AISTATS 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.initializers import XavierUniform
    >>> W = XavierUniform()(10, 14, np.random.RandomState(0))
    >>> bool(np.abs(W).max() <= np.sqrt(6 / 24))
    True
    """

    _distribution = "uniform"


class LeCunNormal(_LeCun):
    """LeCun normal: variance ``1 / fan_in``.

    Keeps the variance of the pre-activations at that of the inputs [1]_;
    suited to tanh, logistic and identity layers.

    Parameters
    ----------
    gain : float, default=1.0
        Multiplies the standard deviation.

    Attributes
    ----------
    gain : float
        The ``gain`` given, used as it is at each call.

    References
    ----------
    .. [1] Y. LeCun, L. Bottou, G. Orr and K.-R. Müller, "Efficient BackProp",
       in Neural Networks: Tricks of the Trade, Springer, 1998.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.initializers import LeCunNormal
    >>> LeCunNormal()(3, 2, np.random.RandomState(0)).shape
    (3, 2)
    """


class LeCunUniform(_LeCun):
    """LeCun uniform: in ``±sqrt(3 / fan_in)``, variance ``1 / fan_in``.

    Parameters
    ----------
    gain : float, default=1.0
        Multiplies the bound.

    Attributes
    ----------
    gain : float
        The ``gain`` given, used as it is at each call.

    References
    ----------
    .. [1] Y. LeCun, L. Bottou, G. Orr and K.-R. Müller, "Efficient BackProp",
       in Neural Networks: Tricks of the Trade, Springer, 1998.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.initializers import LeCunUniform
    >>> W = LeCunUniform()(12, 5, np.random.RandomState(0))
    >>> bool(np.abs(W).max() <= 0.5)
    True
    """

    _distribution = "uniform"


class HeNormal(_He):
    """He (Kaiming) normal: variance ``2 / fan_in``.

    Makes up for ReLU zeroing half of its inputs, so the variance of the
    activations holds through deep ReLU networks [1]_.

    Parameters
    ----------
    gain : float, default=1.0
        Multiplies the standard deviation.

    Attributes
    ----------
    gain : float
        The ``gain`` given, used as it is at each call.

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren and J. Sun, "Delving Deep into Rectifiers:
       Surpassing Human-Level Performance on ImageNet Classification",
       ICCV 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.initializers import HeNormal
    >>> HeNormal()(8, 4, np.random.RandomState(0)).dtype
    dtype('float64')
    """


class HeUniform(_He):
    """He (Kaiming) uniform: in ``±sqrt(6 / fan_in)``, variance ``2 / fan_in``.

    Parameters
    ----------
    gain : float, default=1.0
        Multiplies the bound.

    Attributes
    ----------
    gain : float
        The ``gain`` given, used as it is at each call.

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren and J. Sun, "Delving Deep into Rectifiers:
       Surpassing Human-Level Performance on ImageNet Classification",
       ICCV 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.initializers import HeUniform
    >>> W = HeUniform()(6, 3, np.random.RandomState(0))
    >>> bool(np.abs(W).max() <= 1.0)
    True
    """

    _distribution = "uniform"


class RandomUniform(BaseInitializer):
    """Plain uniform draws in ``[-scale, scale]``, whatever the fan.

    Parameters
    ----------
    scale : float, default=0.5
        Half-width of the interval.

    Attributes
    ----------
    scale : float
        The ``scale`` given, used as it is at each call.

    Notes
    -----
    The variance, ``scale**2 / 3``, does not shrink with the width of the
    layer, so wide or deep networks start saturated or exploding; it is here
    as the baseline the fan-scaled initializers improve upon.

    Examples
    --------
    >>> import numpy as np
    >>> from sknet.initializers import RandomUniform
    >>> W = RandomUniform()(50, 50, np.random.RandomState(0))
    >>> bool(np.abs(W).max() <= 0.5)
    True
    """

    def __init__(self, scale=0.5):
        self.scale = scale

    def __call__(self, fan_in, fan_out, rng):
        if not isinstance(self.scale, numbers.Real) or not self.scale > 0:
            raise ValueError(
                "The 'scale' parameter of RandomUniform must be a float > 0. "
                f"Got {self.scale!r} instead."
            )
        return rng.uniform(-self.scale, self.scale, size=(fan_in, fan_out))


#: The initializer classes by the names ``MLPClassifier(initializer=...)``
#: accepts.
INITIALIZERS = {
    "xavier_normal": XavierNormal,
    "xavier_uniform": XavierUniform,
    "lecun_normal": LeCunNormal,
    "lecun_uniform": LeCunUniform,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "random": RandomUniform,
}


def initialize_weights(initializer, layer_units, rng, dtype):
    """Draw every layer's weights with ``initializer``; biases are zero.

    Parameters
    ----------
    initializer : str or callable
        A name from :data:`INITIALIZERS` or a callable
        ``(fan_in, fan_out, rng) -> ndarray``.
    layer_units : sequence of int
        Units per layer, input and output included.
    rng : numpy.random.RandomState
        Source of randomness.
    dtype : numpy dtype
        Floating dtype of the returned arrays.

    Returns
    -------
    coefs, intercepts : list of ndarray
    """
    if isinstance(initializer, type):
        raise TypeError(
            f"initializer={initializer.__name__} is a class; pass an instance, "
            f"such as {initializer.__name__}()."
        )
    init = INITIALIZERS[initializer]() if isinstance(initializer, str) else initializer
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        W = np.asarray(init(fan_in, fan_out, rng))
        if W.shape != (fan_in, fan_out):
            raise ValueError(
                f"The initializer {initializer!r} must return an array of shape "
                f"(fan_in, fan_out) = {(fan_in, fan_out)}. Got shape {W.shape} "
                "instead."
            )
        if not np.issubdtype(W.dtype, np.number) or not np.all(np.isfinite(W)):
            raise ValueError(
                f"The initializer {initializer!r} returned weights that are not "
                "all finite numbers for a layer of shape "
                f"{(fan_in, fan_out)}."
            )
        coefs.append(W.astype(dtype))
        intercepts.append(np.zeros(fan_out, dtype=dtype))
    return coefs, intercepts
