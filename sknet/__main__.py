"""Train sknet's MLPClassifier on the handwritten digits: ``python -m sknet``.

The digits (8 x 8 images, 1,797 samples) ship with scikit-learn. The script
holds out a stratified test split, fits a Pipeline of StandardScaler and
MLPClassifier, prints one line per epoch, then the test accuracy, the fit
time and the settings used.
"""

import argparse
import sys
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import MLPClassifier, __version__
from ._parallel import n_workers_for, reason_not_to_start
from .initializers import INITIALIZERS
from .optimizers import OPTIMIZERS


def _hidden_sizes(text):
    if not text.strip():
        return ()  # no hidden layer: a linear model
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 128,64; got {text!r}"
        ) from None
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be > 0; got {text!r}")
    return sizes


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m sknet",
        description=(
            "Train sknet's MLPClassifier on scikit-learn's handwritten digits "
            "and report the test accuracy."
        ),
    )
    add = parser.add_argument
    add(
        "--optimizer",
        choices=sorted(OPTIMIZERS),
        default="nesterov",
        help="update rule (default: %(default)s)",
    )
    add(
        "--initializer",
        choices=sorted(INITIALIZERS),
        default="xavier_uniform",
        help="weight initializer (default: %(default)s)",
    )
    add(
        "--hidden",
        type=_hidden_sizes,
        default=(100,),
        metavar="SIZES",
        help="hidden layer sizes, comma-separated (default: 100)",
    )
    add(
        "--activation",
        default="relu",
        choices=["identity", "logistic", "tanh", "relu", "leaky_relu"],
        help="hidden activation (default: %(default)s)",
    )
    add("--epochs", type=int, default=50, help="maximum epochs (default: %(default)s)")
    add(
        "--batch-size",
        type=int,
        default=64,
        help="rows per batch (default: %(default)s)",
    )
    add(
        "--learning-rate",
        type=float,
        default=0.05,
        help="initial learning rate (default: %(default)s)",
    )
    add("--momentum", type=float, default=0.9, help="momentum (default: %(default)s)")
    add("--alpha", type=float, default=1e-4, help="L2 strength (default: %(default)s)")
    add(
        "--early-stopping",
        action="store_true",
        help="hold out 10%% of the training data and stop when it stops improving",
    )
    add(
        "--n-jobs",
        type=int,
        default=1,
        help="worker processes per batch; -1 for all cores (default: %(default)s)",
    )
    add(
        "--test-size",
        type=float,
        default=0.2,
        help="share of the data held out for testing (default: %(default)s)",
    )
    add("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    add("--quiet", action="store_true", help="do not print one line per epoch")
    add(
        "--progress",
        action="store_true",
        help="show a progress bar instead of one line per epoch "
        '(needs scikit-learn >= 1.9 and rich: pip install ".[progress]")',
    )
    add("--version", action="version", version=f"sknet {__version__}")
    return parser


def _add_progress_bar(model):
    """Attach scikit-learn's ProgressBar, or exit with what is missing."""
    try:
        from sklearn.callback import ProgressBar

        model.set_callbacks(ProgressBar())
    except ImportError as exc:
        sys.exit(
            f"--progress needs scikit-learn >= 1.9 and rich ({exc}); install them "
            'with: pip install ".[progress]"'
        )


def main(argv=None):
    """Run the digits job; return the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not 0 < args.test_size < 1:
        parser.error(f"--test-size must be in (0, 1); got {args.test_size}")
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, stratify=y, random_state=args.seed
    )
    clf = MLPClassifier(
        hidden_layer_sizes=args.hidden,
        activation=args.activation,
        initializer=args.initializer,
        optimizer=args.optimizer,
        alpha=args.alpha,
        batch_size=args.batch_size,
        learning_rate_init=args.learning_rate,
        momentum=args.momentum,
        max_iter=args.epochs,
        early_stopping=args.early_stopping,
        n_jobs=args.n_jobs,
        random_state=args.seed,
        verbose=not (args.quiet or args.progress),
    )
    model = make_pipeline(StandardScaler(), clf)
    if args.progress:
        _add_progress_bar(model)

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            model.fit(X_train, y_train)
        except ValueError as exc:  # a bad setting, or a diverging fit
            parser.error(str(exc))
    seconds = time.perf_counter() - start
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)

    # As the estimator decides: in-process where workers should not start.
    workers = 1 if reason_not_to_start() else n_workers_for(args.n_jobs)
    print(f"test accuracy: {model.score(X_test, y_test):.4f}")
    print(f"fit time: {seconds:.2f} s for {clf.n_iter_} epochs")
    print(
        f"settings: {len(X_train)} train / {len(X_test)} test samples, "
        f"hidden={args.hidden}, activation={args.activation}, "
        f"optimizer={args.optimizer}, initializer={args.initializer}, "
        f"batch_size={args.batch_size}, learning_rate_init={args.learning_rate}, "
        + (f"momentum={args.momentum}, " if args.optimizer != "sgd" else "")
        + f"alpha={args.alpha}, "
        f"early_stopping={args.early_stopping}, seed={args.seed}, "
        f"workers={workers}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
