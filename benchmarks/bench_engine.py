"""Speed and memory of sknet's training engine, next to scikit-learn's.

Runs, in one process and side by side, on MNIST-shaped synthetic data
(60,000 x 784, 10 classes from a random linear teacher, fixed seed), a
784-256-10 ReLU network trained by SGD with Nesterov momentum 0.9:

- scikit-learn's ``MLPClassifier(solver='sgd')`` with BLAS at its default
  thread count and with one BLAS thread;
- ``sknet.MLPClassifier`` with ``n_jobs=1`` and ``n_jobs=2``;
- a plain PyTorch CPU loop, when ``import torch`` works;

and prints seconds per epoch (median over the epochs after a warm-up one),
the ratios between them and the arithmetic floor at the matrix-multiply
rate measured in the same run. Then:

- peak memory (PSS summed over the process and its children) of a fit with
  ``n_jobs=1`` and ``n_jobs=2``, each in a fresh subprocess;
- the fixed cost per batch: a tiny network at batch 64, as a share of a
  batch-64 step of the real network;
- ``partial_fit`` (one epoch per call) next to ``fit``, per epoch;
- where a worker's time goes in an ``n_jobs=2`` fit, by timing the engine's
  phases in the workers (wrappers installed in this process before the
  workers fork; sknet's files are not changed).

Epochs are timed inside one ``fit`` with ``max_iter = 1 + epochs``: both
estimators print one line per epoch when ``verbose=True``, and the script
stamps the time of each line, so the first (warm-up) epoch, which also
carries the start-up of the fit and of the workers, is left out.

Usage::

    python benchmarks/bench_engine.py            # full run, several minutes
    python benchmarks/bench_engine.py --quick    # 10,000 rows, f64, batch 200
"""

import argparse
import contextlib
import gc
import io
import json
import mmap
import multiprocessing
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import scipy
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLP
from threadpoolctl import threadpool_info, threadpool_limits

import sknet

N_FEATURES, N_HIDDEN, N_CLASSES = 784, 256, 10
LEARNING_RATE, MOMENTUM, ALPHA = 0.01, 0.9, 1e-4
SEED = 0
ENV_PATTERN = re.compile(r"BLAS|OMP|MKL|CORETYPE|THREAD|GOTO|VECLIB|NVPL")


# Data and estimators


def make_data(n_samples, seed=SEED):
    """MNIST-shaped data: uniform [0, 1] pixels, labels of a linear teacher."""
    rng = np.random.RandomState(seed)
    X = rng.rand(n_samples, N_FEATURES)
    teacher = rng.randn(N_FEATURES, N_CLASSES)
    y = np.argmax((X - 0.5) @ teacher, axis=1)
    return X, y


def _shared_settings(batch, max_iter, hidden):
    """The settings both libraries train with: the same network and run."""
    return dict(
        hidden_layer_sizes=hidden,
        momentum=MOMENTUM,
        learning_rate_init=LEARNING_RATE,
        alpha=ALPHA,
        batch_size=batch,
        max_iter=max_iter,
        shuffle=True,
        tol=0,
        n_iter_no_change=10**9,
        random_state=SEED,
        verbose=True,
    )


def make_sklearn(batch, max_iter, hidden=(N_HIDDEN,)):
    return SkMLP(
        solver="sgd",
        nesterovs_momentum=True,
        **_shared_settings(batch, max_iter, hidden),
    )


def make_sknet(batch, max_iter, n_jobs, hidden=(N_HIDDEN,)):
    return sknet.MLPClassifier(
        optimizer="nesterov",
        n_jobs=n_jobs,
        **_shared_settings(batch, max_iter, hidden),
    )


# Timing and the machine's other load


def _cpu_ticks():
    """Busy (steal included) and total jiffies of the machine, /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


class LoadMeter:
    """CPU used by other processes while a measurement runs, in cores.

    The machine's busy time (from /proc/stat, hypervisor steal included)
    less this process's and its waited-for children's (``os.times``). Read
    it after the children of the measured code have exited.
    """

    _HZ = os.sysconf("SC_CLK_TCK")

    def __enter__(self):
        self._start = (time.perf_counter(), _cpu_ticks(), os.times())
        return self

    def __exit__(self, *exc):
        wall0, (busy0, _), t0 = self._start
        wall = time.perf_counter() - wall0
        busy1, _ = _cpu_ticks()
        t1 = os.times()
        ours = sum(t1[:4]) - sum(t0[:4])
        other = (busy1 - busy0) / self._HZ - ours
        self.cores = max(0.0, other) / wall if wall > 0 else 0.0
        return False


def wait_for_quiet(max_wait, threshold=0.15, window=0.5):
    """Sleep until other processes use < ``threshold`` cores for 2 windows.

    Returns the seconds waited, or None when ``max_wait`` ran out.
    """
    if max_wait <= 0:
        return 0.0
    start = time.perf_counter()
    quiet = 0
    announced = False
    while time.perf_counter() - start < max_wait:
        with LoadMeter() as meter:
            time.sleep(window)
        quiet = quiet + 1 if meter.cores < threshold else 0
        if quiet >= 2:
            return time.perf_counter() - start
        if not announced and meter.cores >= threshold:
            print(
                f"  waiting for other load ({meter.cores:.2f} cores) to stop...",
                file=sys.stderr,
                flush=True,
            )
            announced = True
    return None


class _EpochClock(io.TextIOBase):
    """Stands in for stdout and stamps each per-epoch line of a verbose fit."""

    def __init__(self, on_epoch=None):
        self.stamps = []
        self.on_epoch = on_epoch

    def writable(self):
        return True

    def write(self, text):
        if "loss" in text:
            self.stamps.append(time.perf_counter())
            if self.on_epoch is not None:
                self.on_epoch(len(self.stamps))
        return len(text)


def timed_fit(estimator, X, y, n_epochs, on_epoch=None):
    """Fit with ``max_iter=n_epochs``; return the wall time of every epoch.

    The first epoch's time runs from the call to ``fit``, start-up included.
    ``on_epoch(k)`` is called as epoch ``k`` (from 1) is reported.
    """
    clock = _EpochClock(on_epoch)
    with LoadMeter() as meter:
        start = time.perf_counter()
        with contextlib.redirect_stdout(clock):
            estimator.fit(X, y)
        total = time.perf_counter() - start
    if len(clock.stamps) != n_epochs:
        raise RuntimeError(
            f"expected {n_epochs} epoch lines from {type(estimator).__module__}, "
            f"got {len(clock.stamps)}"
        )
    epochs = np.diff([start, *clock.stamps]).tolist()
    return {"epochs": epochs, "total": total, "other": meter.cores}


# Retries of a measurement disturbed by other processes (set from the flags).
QUIET = {"wait": 120.0, "retries": 2, "max_other": 0.1}


def measured_fit(factory, X, y, n_epochs, blas_threads=None, on_epoch=None):
    """:func:`timed_fit` of ``factory()``, retried while other load disturbs it.

    Waits for the machine to be quiet before each try; keeps the try with
    the least other load. The result holds the fitted estimator and the
    number of tries.
    """
    best = None
    for attempt in range(1 + QUIET["retries"]):
        wait_for_quiet(QUIET["wait"])
        estimator = factory()
        with threadpool_limits(limits=blas_threads, user_api="blas"):
            result = timed_fit(estimator, X, y, n_epochs, on_epoch)
        result.update(estimator=estimator, tries=attempt + 1)
        if best is None or result["other"] < best["other"]:
            best = result
        if result["other"] <= QUIET["max_other"]:
            break
    best["tries"] = attempt + 1
    return best


def timed_partial_fit(estimator, X, y, n_calls):
    """Time ``n_calls`` calls of ``partial_fit``; the first one is a warm-up."""
    classes = np.unique(y)
    times = []
    with contextlib.redirect_stdout(_EpochClock()):
        for _ in range(n_calls):
            start = time.perf_counter()
            estimator.partial_fit(X, y, classes=classes)
            times.append(time.perf_counter() - start)
    return times


def steady(epochs):
    """Median over the epochs after the first (warm-up) one."""
    return statistics.median(epochs[1:])


def time_torch(X, y, batch, n_epochs):
    """A plain PyTorch CPU loop on the same network; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y.astype(np.int64))
    model = torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, N_HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(N_HIDDEN, N_CLASSES),
    ).to(dtype)
    # scikit-learn adds alpha * W / batch to the mean gradient.
    opt = torch.optim.SGD(
        model.parameters(),
        lr=LEARNING_RATE,
        momentum=MOMENTUM,
        nesterov=True,
        weight_decay=ALPHA / batch,
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    n = X.shape[0]
    times = []
    for _ in range(n_epochs):
        start = time.perf_counter()
        order = torch.randperm(n)
        for a in range(0, n, batch):
            idx = order[a : a + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


# The arithmetic floor


def _median_call_time(fn, min_block=0.005, n_blocks=15):
    """Median time of one call of ``fn``, timed in blocks of several calls."""
    fn()
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - start >= min_block:
            break
        calls *= 2
    blocks = []
    for _ in range(n_blocks):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        blocks.append((time.perf_counter() - start) / calls)
    return statistics.median(blocks)


def matmul_rates(batch, dtype, threads=2):
    """GFLOP/s of the two big multiplies of a step, with ``threads`` threads.

    Forward: (batch x 784) @ (784 x 256). Weight gradient: the transposed
    view (784 x batch) @ (batch x 256), as the training step computes it.
    """
    rng = np.random.RandomState(1)
    A = rng.rand(batch, N_FEATURES).astype(dtype)
    W = rng.rand(N_FEATURES, N_HIDDEN).astype(dtype)
    D = rng.rand(batch, N_HIDDEN).astype(dtype)
    Z = np.empty((batch, N_HIDDEN), dtype)
    G = np.empty((N_FEATURES, N_HIDDEN), dtype)
    flops = 2.0 * batch * N_FEATURES * N_HIDDEN
    with threadpool_limits(limits=threads, user_api="blas"):
        t_fwd = _median_call_time(lambda: np.dot(A, W, out=Z))
        t_grad = _median_call_time(lambda: np.dot(A.T, D, out=G))
    return {"fwd": flops / t_fwd / 1e9, "wgrad": flops / t_grad / 1e9}


def n_params(layers):
    return sum(a * b + b for a, b in zip(layers[:-1], layers[1:]))


def needed_flops_per_sample(layers):
    """Multiply flops of one sample's step: no gradient w.r.t. the input."""
    weights = [a * b for a, b in zip(layers[:-1], layers[1:])]
    return 4 * sum(weights) + 2 * sum(weights[1:])


def floors(n_samples, rates):
    """Epoch floors in seconds: 6 * N * P, and the flops actually needed."""
    layers = (N_FEATURES, N_HIDDEN, N_CLASSES)
    rate = 2.0 / (1.0 / rates["fwd"] + 1.0 / rates["wgrad"]) * 1e9
    six_np = 6.0 * n_samples * n_params(layers) / rate
    needed = n_samples * needed_flops_per_sample(layers) / rate
    return six_np, needed


# Memory, in fresh subprocesses


def _children_map():
    """Parent pid -> child pids, from /proc/*/stat."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _tree(pid):
    children, out, i = _children_map(), [pid], 0
    while i < len(out):
        out.extend(children.get(out[i], []))
        i += 1
    return out


def _rollup(pid):
    """Rss and Pss of a process in kB, from /proc/<pid>/smaps_rollup."""
    values = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss"):
                    values[key] = int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return values.get("Rss", 0), values.get("Pss", 0)


def _tree_memory(pid):
    pids = _tree(pid)
    rss = pss = 0
    for p in pids:
        r, s = _rollup(p)
        rss, pss = rss + r, pss + s
    return rss, pss, len(pids)


def measure_memory(mode, n_samples, batch, n_epochs):
    """Peak PSS and RSS of a fit in a fresh subprocess and its children."""
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--memory-child",
        mode,
        "--samples",
        str(n_samples),
        "--epochs",
        str(n_epochs),
        "--batches",
        str(batch),
    ]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    if proc.stdout.readline().strip() != "READY":
        proc.kill()
        raise RuntimeError(f"memory child {mode} failed to start")
    time.sleep(0.2)
    _, base_pss, _ = _tree_memory(proc.pid)
    peak = {"rss": 0, "pss": 0, "procs": 0}
    done = threading.Event()

    def poll():
        while not done.is_set():
            rss, pss, n = _tree_memory(proc.pid)
            peak["rss"] = max(peak["rss"], rss)
            peak["pss"] = max(peak["pss"], pss)
            peak["procs"] = max(peak["procs"], n)
            time.sleep(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    proc.stdin.write("GO\n")
    proc.stdin.flush()
    report = json.loads(proc.stdout.readline())
    done.set()
    poller.join()
    proc.wait()
    report.update(
        base_pss_mb=base_pss / 1024,
        peak_pss_mb=peak["pss"] / 1024,
        peak_rss_mb=peak["rss"] / 1024,
        procs=peak["procs"],
    )
    return report


def memory_child(mode, n_samples, batch, n_epochs):
    """Body of the subprocess of :func:`measure_memory`."""
    import resource

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    X, y = make_data(n_samples)
    if mode == "sklearn":
        est = make_sklearn(batch, n_epochs)
    else:
        est = make_sknet(batch, n_epochs, n_jobs=int(mode[-1]))
    print("READY", flush=True)
    sys.stdin.readline()
    start = time.perf_counter()
    with contextlib.redirect_stdout(_EpochClock()):
        est.fit(X, y)
    elapsed = time.perf_counter() - start
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = {"vmhwm_mb": hwm / 1024, "child_maxrss_mb": children / 1024}
    report["fit_s"] = elapsed
    print(json.dumps(report), flush=True)


# Phases of the engine, timed in the workers


class PhaseTimer:
    """Wraps the engine's steps to add up their times per process.

    The wrappers are installed in this process before the workers fork, so
    they run in the workers too; the sums go to an anonymous shared mapping.
    Relies on private names of sknet; :meth:`install` returns False when
    they are missing.
    """

    PHASES = [
        "run_epoch (total)",
        "shard gradients",
        "squared norm of W (rank 0)",
        "barrier 1 (after gradients)",
        "sum slots + update",
        "  of which apply_step",
        "barrier 2 (after update)",
    ]
    MAX_PROCS = 9  # the parent (serial engine) and up to 8 workers

    def __init__(self):
        size = self.MAX_PROCS * len(self.PHASES) * 8
        self._map = mmap.mmap(-1, size)
        self.sums = np.frombuffer(self._map, dtype=np.float64).reshape(
            self.MAX_PROCS, len(self.PHASES)
        )
        self._saved = []

    @staticmethod
    def _slot():
        name = multiprocessing.current_process().name
        if name.startswith("sknet-worker-"):
            return 1 + int(name.rsplit("-", 1)[1])
        return 0

    def _wrap(self, owner, attr, phase):
        original = getattr(owner, attr)
        sums, slot = self.sums, self._slot

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                sums[slot(), phase] += time.perf_counter() - start

        self._saved.append((owner, attr, original))
        setattr(owner, attr, wrapper)

    def install(self):
        try:
            from sknet import _engine, _parallel
        except ImportError:
            return False
        needed = [
            (_parallel, "shard_loss_grad"),
            (_parallel, "weight_sq_norm"),
            (_parallel, "apply_step"),
            (_parallel, "_Worker"),
            (_parallel, "_Barrier"),
            (_engine, "shard_loss_grad"),
            (_engine, "apply_step"),
            (_engine, "weight_sq_norm"),
            (_engine, "SerialEngine"),
        ]
        if not all(hasattr(mod, name) for mod, name in needed):
            return False
        self._wrap(_parallel._Worker, "run_epoch", 0)
        self._wrap(_parallel, "shard_loss_grad", 1)
        self._wrap(_parallel, "weight_sq_norm", 2)
        self._wrap(_parallel, "apply_step", 5)
        self._wrap(_engine.SerialEngine, "run_epoch", 0)
        self._wrap(_engine, "shard_loss_grad", 1)
        self._wrap(_engine, "weight_sq_norm", 2)
        self._wrap(_engine, "apply_step", 5)
        original_wait = _parallel._Barrier.wait
        sums, slot = self.sums, self._slot

        def wait(barrier):
            # Two waits per batch: odd generations follow the gradients.
            phase = 3 if barrier.generation % 2 == 0 else 6
            start = time.perf_counter()
            try:
                return original_wait(barrier)
            finally:
                sums[slot(), phase] += time.perf_counter() - start

        self._saved.append((_parallel._Barrier, "wait", original_wait))
        _parallel._Barrier.wait = wait
        return True

    def uninstall(self):
        for owner, attr, original in reversed(self._saved):
            setattr(owner, attr, original)
        self._saved.clear()

    def reset(self):
        self.sums[...] = 0

    def per_batch_ms(self, slot, n_batches):
        """Phase times of one process, in ms per batch; 'sum slots + update'
        is what is left of the gradient-to-barrier-2 stretch."""
        s = self.sums[slot] / n_batches * 1e3
        s = s.copy()
        s[4] = s[0] - s[1] - s[2] - s[3] - s[6]
        return s


def profile_phases(X, y, batch, n_epochs, hidden=(N_HIDDEN,)):
    """Per-batch phase times of sknet fits with n_jobs=1 and n_jobs=2."""
    timer = PhaseTimer()
    if not timer.install():
        return None
    try:
        # Sums restart once the warm-up epoch is reported: the workers are then
        # idle, waiting for the next epoch.
        n_batches = (n_epochs - 1) * -(-X.shape[0] // batch)
        rows = {}

        def on_epoch(k):
            if k == 1:
                timer.reset()

        for n_jobs in (1, 2):

            def factory():
                return make_sknet(batch, n_epochs, n_jobs, hidden=hidden)

            fit = measured_fit(factory, X, y, n_epochs, on_epoch=on_epoch)
            rows[f"n_jobs={n_jobs} other"] = fit["other"]
            slots = [0] if n_jobs == 1 else [1, 2]
            for slot in slots:
                label = "n_jobs=1" if n_jobs == 1 else f"n_jobs=2 w{slot - 1}"
                rows[label] = timer.per_batch_ms(slot, n_batches)
            rows[f"n_jobs={n_jobs} wall"] = steady(fit["epochs"]) * 1e3
            rows[f"n_jobs={n_jobs} wall"] /= n_batches / (n_epochs - 1)
        return rows
    finally:
        timer.uninstall()


# Output


def fmt(value, spec=".3f"):
    if value is None:
        return "-"
    return format(value, spec)


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join(" --- " for _ in header) + "|")
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def print_header(args):
    print("# sknet engine benchmark\n")
    print(f"- command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    affinity = len(os.sched_getaffinity(0))
    print(f"- cores: os.cpu_count()={os.cpu_count()}, usable={affinity}")
    print(f"- cpu: {platform.processor() or platform.machine()}, {_cpu_model()}")
    print(
        f"- python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, scikit-learn {sklearn.__version__}, "
        f"sknet {sknet.__version__}, start method "
        f"{multiprocessing.get_start_method()}"
    )
    env = {k: v for k, v in os.environ.items() if ENV_PATTERN.search(k)}
    print(f"- environment (BLAS/threads): {env or 'none set'}")
    try:
        load = os.getloadavg()
        print(f"- load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    except OSError:
        pass
    print("- threadpoolctl.threadpool_info():")
    for pool in threadpool_info():
        keys = ("user_api", "internal_api", "version", "num_threads")
        desc = ", ".join(f"{k}={pool.get(k)}" for k in keys)
        desc += f", architecture={pool.get('architecture', '-')}"
        print(f"  - {os.path.basename(pool['filepath'])}: {desc}")
    print(
        f"- data: {args.samples} x {N_FEATURES}, {N_CLASSES} classes, seed {SEED}; "
        f"network {N_FEATURES}-{N_HIDDEN}-{N_CLASSES} relu; SGD Nesterov "
        f"momentum {MOMENTUM}, lr {LEARNING_RATE}, alpha {ALPHA}"
    )
    print(
        f"- timing: fit(max_iter={1 + args.epochs}); median of the last "
        f"{args.epochs} epochs (the first is a warm-up)"
    )
    print(
        f"- other load: before each fit, waits up to {args.quiet_wait:g} s for other"
        " processes to use < 0.15 cores; a fit during which they used > 0.1 "
        f"cores is retried up to {args.retries} times, keeping the least disturbed"
    )
    print()


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown model"


# The benchmark


def run_speed(args, data):
    """The main table: seconds per epoch for each dtype and batch size."""
    n_fit = 1 + args.epochs
    rows, raw, notes = [], [], []
    torch_rows, medians = [], {}
    for dtype in args.dtypes:
        X, y = data[dtype]
        for batch in args.batches:
            t = {}
            t["skl2"] = measured_fit(lambda: make_sklearn(batch, n_fit), X, y, n_fit)
            t["skl1"] = measured_fit(
                lambda: make_sklearn(batch, n_fit), X, y, n_fit, blas_threads=1
            )
            models = {}
            for n_jobs in (1, 2):
                t[f"sk{n_jobs}"] = measured_fit(
                    lambda: make_sknet(batch, n_fit, n_jobs), X, y, n_fit
                )
                models[n_jobs] = t[f"sk{n_jobs}"]["estimator"]
            same = models[1].loss_curve_ == models[2].loss_curve_ and all(
                np.array_equal(a, b) for a, b in zip(models[1].coefs_, models[2].coefs_)
            )
            if not same:
                notes.append(f"{dtype} batch {batch}: n_jobs=1 and 2 weights DIFFER")
            torch_times = time_torch(X, y, batch, n_fit) if args.torch else None
            rates = matmul_rates(batch, np.dtype(dtype))
            floor_6np, floor_need = floors(X.shape[0], rates)
            m = {k: steady(v["epochs"]) for k, v in t.items()}
            rows.append(
                [
                    dtype,
                    batch,
                    fmt(m["skl2"]),
                    fmt(m["skl1"]),
                    fmt(m["sk1"]),
                    fmt(m["sk2"]),
                    fmt(m["sk2"] / m["skl2"], ".2f"),
                    f"{m['sk2'] / m['sk1']:.2f} ({m['sk1'] / m['sk2']:.2f}x)",
                    fmt(floor_6np),
                    fmt(m["sk2"] / floor_6np, ".2f"),
                    fmt(floor_need),
                    fmt(m["sk2"] / floor_need, ".2f"),
                    f"{rates['fwd']:.0f} / {rates['wgrad']:.0f}",
                    fmt(max(v["other"] for v in t.values()), ".2f"),
                ]
            )
            if torch_times is not None:
                tt = steady(torch_times)
                torch_rows.append(
                    [dtype, batch, fmt(tt), fmt(m["sk2"] / tt, ".2f"), fmt(m["skl2"])]
                )
            for key, label in [
                ("skl2", "sklearn 2thr"),
                ("skl1", "sklearn 1thr"),
                ("sk1", "sknet n_jobs=1"),
                ("sk2", "sknet n_jobs=2"),
            ]:
                ep = " ".join(f"{e:.3f}" for e in t[key]["epochs"])
                other = f"other load {t[key]['other']:.2f}, tries {t[key]['tries']}"
                raw.append(f"{dtype} b{batch} {label:15s} epochs: {ep}  ({other})")
            losses = (
                f"{dtype} b{batch} final loss: sknet {models[1].loss_:.4f}, "
                f"n_jobs=2 identical: {same}"
            )
            raw.append(losses)
            medians[(dtype, batch)] = m
            print(f"  done {dtype} batch {batch}", file=sys.stderr, flush=True)
    return rows, raw, notes, torch_rows, medians


def run_overhead(args, data, big_per_batch):
    """Fixed cost per batch: a 10-2-10 network at batch 64."""
    X, y = data["float64"]
    X_tiny = np.ascontiguousarray(X[:, :10])
    batch = 64
    n_batches = -(-X.shape[0] // batch)
    n_fit = 1 + max(args.epochs, 3)
    per_batch, other = {}, {}
    for n_jobs in (1, 2):
        fit = measured_fit(
            lambda: make_sknet(batch, n_fit, n_jobs, hidden=(2,)), X_tiny, y, n_fit
        )
        per_batch[n_jobs] = steady(fit["epochs"]) / n_batches
        other[n_jobs] = fit["other"]
    fit = measured_fit(
        lambda: make_sklearn(batch, n_fit, hidden=(2,)), X_tiny, y, n_fit
    )
    per_batch["skl"] = steady(fit["epochs"]) / n_batches
    other["skl"] = fit["other"]
    base = "from the table"
    if big_per_batch is None:
        n_big = 1 + args.epochs
        fit = measured_fit(lambda: make_sknet(batch, n_big, 1), X, y, n_big)
        big_per_batch = steady(fit["epochs"]) / n_batches
        base = fmt(fit["other"], ".2f")
    us = 1e6
    extra = per_batch[2] - per_batch[1]
    phases = profile_phases(X_tiny, y, batch, n_fit, hidden=(2,))
    barrier_rows = []
    if phases is not None:
        b = PhaseTimer.PHASES.index
        for w in ("w0", "w1"):
            ph = phases[f"n_jobs=2 {w}"] / 1e3  # s per batch
            waits = ph[b("barrier 1 (after gradients)")]
            waits += ph[b("barrier 2 (after update)")]
            barrier_rows.append(
                [
                    f"  worker {w[1]}: in the 2 barriers (profiled fit)",
                    fmt(waits * us, ".0f"),
                    fmt(100 * waits / big_per_batch, ".1f"),
                    fmt(phases["n_jobs=2 other"], ".2f"),
                ]
            )
    rows = [
        [
            "sknet n_jobs=1, 10-2-10",
            fmt(per_batch[1] * us, ".0f"),
            fmt(100 * per_batch[1] / big_per_batch, ".1f"),
            fmt(other[1], ".2f"),
        ],
        [
            "sknet n_jobs=2, 10-2-10",
            fmt(per_batch[2] * us, ".0f"),
            fmt(100 * per_batch[2] / big_per_batch, ".1f"),
            fmt(other[2], ".2f"),
        ],
        *barrier_rows,
        [
            "n_jobs=2 minus n_jobs=1",
            fmt(extra * us, ".0f"),
            fmt(100 * extra / big_per_batch, ".1f"),
            "",
        ],
        [
            "sklearn 10-2-10 (reference)",
            fmt(per_batch["skl"] * us, ".0f"),
            fmt(100 * per_batch["skl"] / big_per_batch, ".1f"),
            fmt(other["skl"], ".2f"),
        ],
        [
            "sknet n_jobs=1, 784-256-10 (base)",
            fmt(big_per_batch * us, ".0f"),
            "100",
            base,
        ],
    ]
    return rows


def run_partial_fit(args, data, batch):
    """Per-epoch time with partial_fit calls, next to fit, float64."""
    X, y = data["float64"]
    n_calls = 1 + args.epochs
    rows = []
    ests = [
        ("sklearn 2thr", lambda: make_sklearn(batch, 1)),
        ("sknet n_jobs=1", lambda: make_sknet(batch, 1, 1)),
        ("sknet n_jobs=2", lambda: make_sknet(batch, 1, 2)),
    ]
    for label, factory in ests:
        wait_for_quiet(QUIET["wait"])
        est = factory()
        with LoadMeter() as meter:
            times = timed_partial_fit(est, X, y, n_calls)
            del est  # closes sknet's workers, so their CPU time is counted
            gc.collect()
        rows.append([label, fmt(times[0]), fmt(steady(times)), fmt(meter.cores, ".2f")])
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows, f64, b200")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument(
        "--epochs", type=int, default=None, help="timed epochs after the warm-up"
    )
    parser.add_argument("--batches", type=str, default=None, help="e.g. 64,200,1000")
    parser.add_argument("--dtypes", type=str, default=None, help="float64,float32")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-torch", dest="torch", action="store_false")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120,
        help="seconds to wait for other load to stop before each measurement",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="extra tries of a fit during which other processes used > 0.1 cores",
    )
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.samples is None:
        args.samples = 10_000 if args.quick else 60_000
    if args.epochs is None:
        args.epochs = 3
    if args.batches is None:
        args.batches = "200" if args.quick else "64,200,1000"
    if args.dtypes is None:
        args.dtypes = "float64" if args.quick else "float64,float32"
    args.batches = [int(b) for b in args.batches.split(",")]
    args.dtypes = [d.strip() for d in args.dtypes.split(",")]
    if args.epochs < 2:
        parser.error("--epochs must be at least 2")

    if args.memory_child is not None:
        memory_child(args.memory_child, args.samples, args.batches[0], args.epochs)
        return

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    QUIET.update(wait=args.quiet_wait, retries=args.retries)
    print_header(args)
    try:
        import torch

        torch_note = f"PyTorch {torch.__version__}: timed below"
    except ImportError:
        torch_note = "PyTorch: not installed (import torch failed), no torch row"
        args.torch = False

    X64, y = make_data(args.samples)
    data = {"float64": (X64, y)}
    if "float32" in args.dtypes:
        data["float32"] = (X64.astype(np.float32), y)

    start = time.perf_counter()
    rows, raw, notes, torch_rows, medians = run_speed(args, data)
    header = [
        "dtype",
        "batch",
        "sklearn 2thr",
        "sklearn 1thr",
        "sknet n_jobs=1",
        "sknet n_jobs=2",
        "n2/skl2",
        "n2/n1 (speedup)",
        "floor 6NP",
        "n2/floor",
        "floor need",
        "n2/need",
        "GFLOP/s fwd/wgrad",
        "other load",
    ]
    print("## Seconds per epoch (median after warm-up)\n")
    print(table(header, rows))
    print()
    gflop_6np = 6 * args.samples * n_params((N_FEATURES, N_HIDDEN, N_CLASSES))
    gflop_need = args.samples * needed_flops_per_sample(
        (N_FEATURES, N_HIDDEN, N_CLASSES)
    )
    print(
        f"- floor 6NP: 6 x {args.samples} x "
        f"{n_params((N_FEATURES, N_HIDDEN, N_CLASSES))} params = "
        f"{gflop_6np / 1e9:.1f} GFLOP per epoch; floor need: the multiplies a "
        f"step does (no gradient w.r.t. the input) = {gflop_need / 1e9:.1f} GFLOP."
        " Both at the rate of numpy's (batch x 784) @ (784 x 256) and "
        "(784 x batch) @ (batch x 256) with 2 BLAS threads, measured in this run."
    )
    print(
        "- n2/skl2: sknet n_jobs=2 time over scikit-learn's with 2 BLAS threads; "
        "n2/n1: sknet time ratio (speedup = n1/n2)."
    )
    print(
        "- GFLOP/s: the measured rates behind the floors. other load: the most "
        "CPU (in cores) that other processes used during one of the row's fits; "
        "above ~0.1 the row is disturbed."
    )
    print(f"- {torch_note}")
    for note in notes:
        print(f"- WARNING: {note}")
    print()
    if torch_rows:
        print(
            table(
                ["dtype", "batch", "torch 2thr", "n2/torch", "sklearn 2thr"], torch_rows
            )
        )
        print()
    print("Raw epoch times (s; the first is the warm-up, start-up included):\n")
    print("```")
    print("\n".join(raw))
    print("```\n")
    print(f"(speed table: {time.perf_counter() - start:.0f} s)\n", flush=True)

    big_b64 = None
    if ("float64", 64) in medians:
        big_b64 = medians[("float64", 64)]["sk1"] / -(-args.samples // 64)
    print("## Fixed cost per batch (batch 64, float64)\n")
    print(
        table(
            ["run", "us per batch", "% of a 784-256-10 n_jobs=1 step", "other load"],
            run_overhead(args, data, big_b64),
        )
    )
    print(
        "\n- A 10-2-10 network does next to no arithmetic, so its time per batch "
        "is the engine's fixed cost per batch: Python bookkeeping and small numpy"
        " calls, and with n_jobs=2 the two barriers of each batch (the barrier "
        "rows: time a worker spends in them, waiting for its peer included, in a"
        " separate fit with timing wrappers). The base is a batch-64 step of "
        "784-256-10 with n_jobs=1."
    )
    print()

    pf_batch = 200 if 200 in args.batches else args.batches[0]
    print(f"## partial_fit vs fit, float64, batch {pf_batch} (s per epoch)\n")
    pf = run_partial_fit(args, data, pf_batch)
    fit_ref = {}
    for r in rows:
        if r[0] == "float64" and r[1] == pf_batch:
            fit_ref = {"sklearn 2thr": r[2], "sknet n_jobs=1": r[4]}
            fit_ref["sknet n_jobs=2"] = r[5]
    pf = [[*r, fit_ref.get(r[0], "-")] for r in pf]
    print(
        table(
            [
                "estimator",
                "first call",
                "later calls (median)",
                "other load",
                "fit, per epoch",
            ],
            pf,
        )
    )
    print(
        "\n- sknet's partial_fit keeps its workers, but each call shares its data "
        "with them again (the workers are forked without it)."
    )
    print()

    if not args.no_memory:
        mem_batch = 200 if 200 in args.batches else args.batches[0]
        print(
            f"## Peak memory of a fit (float64, batch {mem_batch}, 2 epochs, "
            "fresh subprocess each)\n"
        )
        mem = {}
        for mode in ("sknet1", "sknet2", "sklearn"):
            wait_for_quiet(QUIET["wait"])
            mem[mode] = measure_memory(mode, args.samples, mem_batch, 2)
        mrows = []
        for mode, label in [
            ("sknet1", "sknet n_jobs=1"),
            ("sknet2", "sknet n_jobs=2"),
            ("sklearn", "sklearn"),
        ]:
            r = mem[mode]
            mrows.append(
                [
                    label,
                    fmt(r["base_pss_mb"], ".0f"),
                    fmt(r["peak_pss_mb"], ".0f"),
                    fmt(r["peak_pss_mb"] - r["base_pss_mb"], ".0f"),
                    fmt(r["peak_rss_mb"], ".0f"),
                    fmt(r["vmhwm_mb"], ".0f"),
                    fmt(r["child_maxrss_mb"], ".0f"),
                    r["procs"],
                ]
            )
        print(
            table(
                [
                    "fit",
                    "PSS before fit",
                    "peak PSS (sum)",
                    "peak - before",
                    "peak RSS (sum)",
                    "main VmHWM",
                    "max child RSS",
                    "procs",
                ],
                mrows,
            )
        )
        a, b = mem["sknet1"], mem["sknet2"]
        ratio = b["peak_pss_mb"] / a["peak_pss_mb"]
        inc_a = a["peak_pss_mb"] - a["base_pss_mb"]
        inc_b = b["peak_pss_mb"] - b["base_pss_mb"]
        print(
            f"\n- peak PSS n_jobs=2 / n_jobs=1: {ratio:.2f}; growth during the fit: "
            f"{inc_b:.0f} MB vs {inc_a:.0f} MB. MB = 2**20 bytes; PSS and RSS summed"
            " over the process and all its descendants, sampled every 10 ms; the "
            f"data ({X64.nbytes / 2**20:.0f} MB) is made before the fit. main "
            "VmHWM: the kernel's peak RSS of the main process over its life, data"
            " generation included; max child RSS: the largest child's peak RSS "
            "(pages shared with the parent counted in full)."
        )
        print()

    if not args.no_profile:
        prof_batch = 200 if 200 in args.batches else args.batches[0]
        n_prof = 1 + args.epochs
        print(
            f"## Where the time goes: sknet phases, float64, batch {prof_batch} "
            f"(ms per batch, the {n_prof - 1} epochs after the warm-up)\n"
        )
        phases = profile_phases(X64, y, prof_batch, n_prof)
        if phases is None:
            print("- unavailable: sknet's private names changed\n")
        else:
            labels = [k for k in phases if k.endswith(("=1", "w0", "w1"))]
            prow = []
            for i, name in enumerate(PhaseTimer.PHASES):
                prow.append([name] + [fmt(phases[k][i], ".3f") for k in labels])
            prow.append(
                ["epoch wall time / batches (median epoch)"]
                + [
                    fmt(phases["n_jobs=1 wall"], ".3f"),
                    fmt(phases["n_jobs=2 wall"], ".3f"),
                    "",
                ]
            )
            prow.append(
                ["other load during the fit (cores)"]
                + [
                    fmt(phases["n_jobs=1 other"], ".2f"),
                    fmt(phases["n_jobs=2 other"], ".2f"),
                    "",
                ]
            )
            print(table(["phase", *labels], prow))
            print(
                "\n- Each worker: shard gradients, barrier, its slice of the sum of"
                " the shard gradients and of the update, barrier. The serial "
                "engine (n_jobs=1) sums the shard gradients as it goes and does"
                " the whole update; it has no barriers. Wrapper overhead is about "
                "1 us per call."
            )
            print()
    print(f"(total: {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
