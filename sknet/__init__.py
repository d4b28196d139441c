"""sknet: a scikit-learn multi-layer perceptron with pluggable strategies."""

from ._mlp import MLPClassifier
from ._parallel import WorkerError
from ._stream import fit_stream

__version__ = "0.1.0"

__all__ = ["MLPClassifier", "WorkerError", "fit_stream", "__version__"]
