"""The multiprocessing engine: one batch, several worker processes.

Each epoch, the parent writes the order of the rows into shared memory and
sends one message per worker; the workers then run every batch of the epoch
on their own, meeting twice a batch at a barrier:

1. each worker computes the gradients of its shards of the batch into the
   shard's slot of a shared array (worker 0 also takes ``||W||^2``);
2. each worker adds the slots from first to last over its own slice of the
   parameters, then normalises, adds L2 and applies the optimizer there.

Because every operation after the shard gradients is element-wise, and the
shards and their order depend on the batch size alone, the result does not
depend on the number of workers (see :mod:`sknet._engine`).

The barrier is made of pipes: a worker writes its rank to each peer's pipe
and reads until it has heard from every peer. The kernel orders these
writes and reads, so the shared arrays written before a barrier are seen
after it on any processor. The parent wakes everyone with an abort byte when
a worker dies or fails.
"""

import multiprocessing
import os
import select
import signal
import sys
import threading
import traceback
import types
import weakref
from contextlib import contextmanager
from multiprocessing import resource_tracker, shared_memory
from multiprocessing.connection import wait

import cloudpickle
import numpy as np
import scipy.sparse as sp
from joblib import cpu_count, effective_n_jobs
from threadpoolctl import threadpool_limits

from ._engine import (
    _MAX_SHARDS,
    EpochResult,
    apply_step,
    batch_slices,
    ordered_sum,
    record_step,
    shard_bounds,
    shard_loss_grad,
)
from ._network import weight_sq_norm
from ._validation import warn_user

_ABORT = 255
# Python 3.13 lets a process attach to a segment without tracking it.
_ATTACH_UNTRACKED = sys.version_info >= (3, 13)
# Spins on a barrier before blocking in select: a few hundred microseconds.
_SPINS = 300
# How often a blocked worker checks that its parent is alive, in seconds.
_PARENT_CHECK = 1.0
# Fields of the shared control array.
_STOP_REQUEST, _STOP_DECISION, _SQ_NORM = 0, 1, 2


class WorkerError(RuntimeError):
    """A worker process of the training engine died.

    Raised by ``fit`` and ``partial_fit`` with ``n_jobs`` > 1 when a worker
    process ends unexpectedly (killed, out of memory, crashed). By then every
    other worker has been stopped, the shared memory unlinked and the
    estimator restored to its state before the call, so it can be fitted
    again. It is a ``RuntimeError``, so code that catches those catches it.

    Parameters
    ----------
    message : str
        What happened: which worker, and its exit code or signal.

    Attributes
    ----------
    args : tuple
        ``(message,)``, as for any exception.

    Examples
    --------
    >>> from sknet import WorkerError
    >>> issubclass(WorkerError, RuntimeError)
    True
    >>> str(WorkerError("Worker process 1 died unexpectedly (killed by SIGKILL)."))
    'Worker process 1 died unexpectedly (killed by SIGKILL).'
    """


class _Aborted(Exception):
    """Raised in a worker when the parent or a peer aborts the epoch."""


# Shared memory


class _SharedArrays:
    """Named arrays laid out in one shared-memory segment.

    ``specs`` is a list of ``(key, shape, dtype)``. The creator owns the
    segment and unlinks it; the standard library names it at random and
    creates it readable by its owner only.
    """

    def __init__(self, specs, name=None):
        self.specs = [(k, tuple(shape), np.dtype(dt).str) for k, shape, dt in specs]
        offsets, size = [], 0
        for _, shape, dtype in self.specs:
            offsets.append(size)
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            size += -(-nbytes // 64) * 64
        if name is None:
            self.shm = shared_memory.SharedMemory(create=True, size=max(size, 64))
        elif _ATTACH_UNTRACKED:
            self.shm = shared_memory.SharedMemory(name=name, track=False)
        else:
            # Registers again with the parent's tracker, which the workers
            # share (see WorkerPool.start): the parent's unlink clears it.
            self.shm = shared_memory.SharedMemory(name=name)
        self.arrays = {
            key: np.ndarray(shape, dtype, buffer=self.shm.buf, offset=off)
            for (key, shape, dtype), off in zip(self.specs, offsets)
        }

    @property
    def handle(self):
        """What a worker needs to attach: the segment's name and layout."""
        return self.shm.name, self.specs

    def close(self, unlink=False):
        self.arrays = {}
        try:
            self.shm.close()
        except BufferError:
            # A view is still alive somewhere; the mapping goes with it.
            pass
        if unlink:
            try:
                self.shm.unlink()
            except FileNotFoundError:
                pass


def _data_specs(X, Y, sample_weight):
    specs = []
    if sp.issparse(X):
        specs += [
            ("X_data", X.data.shape, X.data.dtype),
            ("X_indices", X.indices.shape, X.indices.dtype),
            ("X_indptr", X.indptr.shape, X.indptr.dtype),
        ]
    else:
        specs.append(("X", X.shape, X.dtype))
    specs.append(("Y", Y.shape, Y.dtype))
    if sample_weight is not None:
        specs.append(("sw", sample_weight.shape, sample_weight.dtype))
    return specs


def _share_data(X, Y, sample_weight):
    """Copy the training data into a new segment."""
    segment = _SharedArrays(_data_specs(X, Y, sample_weight))
    a = segment.arrays
    if sp.issparse(X):
        a["X_data"][...] = X.data
        a["X_indices"][...] = X.indices
        a["X_indptr"][...] = X.indptr
    else:
        a["X"][...] = X
    a["Y"][...] = Y
    if sample_weight is not None:
        a["sw"][...] = sample_weight
    return segment


def _data_from(arrays, n_features):
    if "X" in arrays:
        X = arrays["X"]
    else:
        n_rows = arrays["X_indptr"].shape[0] - 1
        X = sp.csr_matrix(
            (arrays["X_data"], arrays["X_indices"], arrays["X_indptr"]),
            shape=(n_rows, n_features),
            copy=False,
        )
    return X, arrays["Y"], arrays.get("sw")


# Data handed to forked workers without a copy: set just before a fork.
_INHERITED = {}


# Worker side


class _Barrier:
    """All-to-all barrier over pipes; see the module docstring."""

    def __init__(self, rank, n_workers, read_fd, write_fds):
        self.rank = rank
        self.read_fd = read_fd
        self.write_fds = write_fds
        self.heard = [0] * n_workers
        self.peers = [r for r in range(n_workers) if r != rank]
        self.generation = 0
        self.parent = os.getppid()
        os.set_blocking(read_fd, False)
        self.poller = select.poll()
        self.poller.register(read_fd, select.POLLIN)

    def wait(self):
        self.generation += 1
        if not self.peers:
            return
        token = bytes([self.rank])
        for fd in self.write_fds:
            os.write(fd, token)
        spins = 0
        while any(self.heard[r] < self.generation for r in self.peers):
            try:
                data = os.read(self.read_fd, 4096)
            except BlockingIOError:
                spins += 1
                if spins > _SPINS:
                    self._block()
                continue
            if not data:
                raise _Aborted  # every writer is gone: parent and peers died
            for byte in data:
                if byte == _ABORT:
                    raise _Aborted
                self.heard[byte] += 1

    def _block(self):
        # poll, not select: select fails on descriptors numbered 1024 or more.
        ready = self.poller.poll(_PARENT_CHECK * 1000)
        if not ready and os.getppid() != self.parent:
            raise _Aborted


class _Worker:
    """A worker's view of one training call: shared arrays and its share."""

    def __init__(self, rank, n_workers, barrier, setup):
        problem_bytes, state_handle, data_handle, n_features = setup
        self.problem = cloudpickle.loads(problem_bytes)
        self.rank, self.n_workers, self.barrier = rank, n_workers, barrier
        self.state = _SharedArrays(state_handle[1], name=state_handle[0])
        if data_handle is None:
            self.data_segment = None
            self.data = _INHERITED["data"]
        else:
            self.data_segment = _SharedArrays(data_handle[1], name=data_handle[0])
            self.data = _data_from(self.data_segment.arrays, n_features)
        n_params = self.problem.layout.n_params
        bounds = [n_params * r // n_workers for r in range(n_workers + 1)]
        self.part = (bounds[rank], bounds[rank + 1])

    def close(self):
        self.data = None
        self.state.close()
        if self.data_segment is not None:
            self.data_segment.close()

    def run_epoch(self, n_rows, batch_size, learning_rate):
        a = self.state.arrays
        params, slots, control = a["params"], a["slots"], a["control"]
        buffers = list(a["buffers"])
        order = a["order"][:n_rows]
        problem, alpha = self.problem, self.problem.alpha
        result = EpochResult()
        for start, end in batch_slices(n_rows, batch_size):
            rows = order[start:end]
            edges = shard_bounds(len(rows))
            n_shards = len(edges) - 1
            for k in range(n_shards):
                if k * self.n_workers // n_shards == self.rank:
                    a["losses"][k], a["weights"][k] = shard_loss_grad(
                        problem,
                        params,
                        self.data,
                        rows[edges[k] : edges[k + 1]],
                        slots[k],
                    )
            if self.rank == 0:
                control[_SQ_NORM] = weight_sq_norm(
                    params, problem.layout.n_coefs, alpha
                )
                control[_STOP_DECISION] = control[_STOP_REQUEST]
            self.barrier.wait()

            loss = ordered_sum(a["losses"][:n_shards].tolist())
            weight = ordered_sum(a["weights"][:n_shards].tolist())
            sq_norm, stop = float(control[_SQ_NORM]), bool(control[_STOP_DECISION])
            if not np.isfinite(loss):
                result.diverged = True
                return result
            if weight > 0:
                lo, hi = self.part
                grad = slots[0]
                for k in range(1, n_shards):
                    grad[lo:hi] += slots[k][lo:hi]
                apply_step(
                    problem,
                    params,
                    grad,
                    buffers,
                    weight,
                    learning_rate,
                    self.part,
                    slots[-1],
                )
                record_step(result, loss, weight, sq_norm, alpha, end - start)
            result.n_seen += end - start
            self.barrier.wait()
            if stop:
                result.interrupted = True
                return result
        return result


def _worker_main(rank, n_workers, conn, barrier_read, barrier_writes):
    """Entry point of a worker process: serve commands until told to close."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    limiter = threadpool_limits(limits=1, user_api="blas")
    barrier = _Barrier(
        rank, n_workers, barrier_read.fileno(), [c.fileno() for c in barrier_writes]
    )
    worker = None
    parent = os.getppid()
    while True:
        try:
            # A forked sibling may hold the parent's end of this pipe open,
            # so a dead parent is noticed by polling, not only by EOF.
            if not conn.poll(_PARENT_CHECK):
                if os.getppid() != parent:
                    break
                continue
            command, payload = conn.recv()
        except (EOFError, OSError):
            break
        if command == "close":
            break
        try:
            if command == "setup":
                if worker is not None:
                    worker.close()
                worker = _Worker(rank, n_workers, barrier, payload)
                message = ("ok", None)
            else:
                message = ("ok", worker.run_epoch(*payload))
        except _Aborted:
            message = ("aborted", None)
        except BaseException as exc:  # noqa: BLE001 - the parent re-raises it
            for fd in barrier.write_fds:
                try:
                    os.write(fd, bytes([_ABORT]))
                except OSError:
                    pass
            message = ("error", exc, traceback.format_exc())
        try:
            _send(conn, message)
        except OSError:
            break  # the parent is gone
    if worker is not None:
        worker.close()
    del limiter


def _send(conn, message):
    """Reply to the parent; cloudpickle carries exceptions of any class.

    Raises OSError when the parent is gone.
    """
    try:
        data = cloudpickle.dumps(message)
    except Exception:
        status, exc, *trace = message
        data = cloudpickle.dumps(
            (status, RuntimeError(f"{type(exc).__name__}: {exc}"), *trace)
        )
    conn.send_bytes(data)


def _receive(conn):
    """A worker's reply, or None if its pipe is closed or has nothing."""
    try:
        if not conn.poll():
            return None
        return cloudpickle.loads(conn.recv_bytes())
    except (EOFError, OSError):
        return None


# Parent side


@contextmanager
def _main_module_hidden(context):
    """Keep spawned workers from running the user's script again.

    A 'spawn' or 'forkserver' child imports the parent's ``__main__`` module
    unless it is hidden while the process starts; the workers need nothing
    from it, and a script without an ``if __name__ == "__main__":`` guard
    would otherwise train again in every worker.
    """
    if context.get_start_method() == "fork":
        yield
        return
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


@contextmanager
def _sigint_blocked():
    """Start children with SIGINT blocked; each then ignores it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _shutdown(owner, processes, conns, pipes, segments):
    """Stop every worker and unlink every segment; safe to call twice.

    Only the process that started the pool does this: a forked child that
    inherited the pool leaves the parent's workers and memory alone.
    """
    if os.getpid() != owner:
        return
    for conn in conns:
        try:
            conn.send(("close", None))
        except (OSError, ValueError):
            pass
    for proc in processes:
        proc.join(timeout=2)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=2)
        if proc.is_alive():
            proc.kill()
            proc.join()
    for conn in conns + pipes:
        conn.close()
    conns.clear()
    pipes.clear()
    for segment in segments:
        segment.close(unlink=True)
    segments.clear()


class WorkerPool:
    """Worker processes that train batches together, started once.

    Parameters
    ----------
    n_workers : int
        Number of processes, at least 2.
    """

    def __init__(self, n_workers):
        self.n_workers = n_workers
        self.context = multiprocessing.get_context()
        self._processes, self._conns, self._pipes, self._segments = [], [], [], []
        self._owner = os.getpid()
        self._finalizer = weakref.finalize(
            self,
            _shutdown,
            self._owner,
            self._processes,
            self._conns,
            self._pipes,
            self._segments,
        )
        self._started = False
        self._state = self._data = None
        self._inherited = False

    @property
    def alive(self):
        if os.getpid() != self._owner:
            return False  # inherited through a fork: the workers are not ours
        return self._started and all(p.is_alive() for p in self._processes)

    def start(self, inherited_data=None):
        """Start the workers; forked ones may inherit ``inherited_data``."""
        # One resource tracker for the parent and every worker, whatever the
        # start method, so a worker's attachment is not taken for a leak.
        resource_tracker.ensure_running()
        pipes = [self.context.Pipe(duplex=False) for _ in range(self.n_workers)]
        self._pipes.extend(c for pair in pipes for c in pair)
        # Only a forked worker sees the parent's memory as it was at the fork.
        inherit = (
            inherited_data is not None and self.context.get_start_method() == "fork"
        )
        if inherit:
            _INHERITED["data"] = inherited_data
        try:
            with _main_module_hidden(self.context), _sigint_blocked():
                for rank in range(self.n_workers):
                    parent_end, child_end = self.context.Pipe()
                    writes = [pipes[r][1] for r in range(self.n_workers) if r != rank]
                    proc = self.context.Process(
                        target=_worker_main,
                        args=(rank, self.n_workers, child_end, pipes[rank][0], writes),
                        name=f"sknet-worker-{rank}",
                        daemon=True,
                    )
                    proc.start()
                    child_end.close()
                    self._processes.append(proc)
                    self._conns.append(parent_end)
        except BaseException:
            self.close()
            raise
        finally:
            _INHERITED.clear()
        self._abort_writers = [w for _, w in pipes]
        self._started = True
        self._inherited = inherit

    def setup(self, problem, data, batch_size):
        """Share a training call's data and state with the workers."""
        X, Y, sample_weight = data
        n_samples, n_features = X.shape
        n_params = problem.layout.n_params
        n_buffers = int(problem.optimizer.n_buffers)
        # One slot per shard of the largest batch, and one of scratch.
        n_slots = len(shard_bounds(batch_size))
        dtype = Y.dtype
        self._release_segments()
        self._state = _SharedArrays(
            [
                ("params", (n_params,), dtype),
                ("buffers", (n_buffers, n_params), dtype),
                ("slots", (n_slots, n_params), dtype),
                ("order", (n_samples,), np.intp),
                ("losses", (_MAX_SHARDS,), np.float64),
                ("weights", (_MAX_SHARDS,), np.float64),
                ("control", (3,), np.float64),
            ]
        )
        self._segments.append(self._state)
        data_handle = None
        if not self._inherited:
            self._data = _share_data(X, Y, sample_weight)
            self._segments.append(self._data)
            data_handle = self._data.handle
        self._inherited = False  # later calls bring new data
        payload = (
            cloudpickle.dumps(problem),
            self._state.handle,
            data_handle,
            n_features,
        )
        self._broadcast("setup", payload, lambda: False)

    def run_epoch(self, params, buffers, order, batch_size, learning_rate, stop):
        """Run one epoch on the workers; same contract as the serial engine."""
        a = self._state.arrays
        a["params"][...] = params
        a["buffers"][...] = buffers
        a["order"][: len(order)] = order
        a["control"][...] = 0
        a["control"][_STOP_REQUEST] = stop()
        replies = self._broadcast(
            "epoch", (len(order), batch_size, learning_rate), stop
        )
        params[...] = a["params"]
        buffers[...] = a["buffers"]
        return replies[0]

    def _broadcast(self, command, payload, stop):
        for rank, conn in enumerate(self._conns[: self.n_workers]):
            try:
                conn.send((command, payload))
            except OSError:
                self._abort()
                raise self._death(rank) from None
        return self._collect(stop)

    def _collect(self, stop):
        """Wait for every worker's reply; a dead or failed worker aborts all."""
        conns = self._conns[: self.n_workers]
        sentinels = {p.sentinel: rank for rank, p in enumerate(self._processes)}
        replies, pending, error = (
            [None] * self.n_workers,
            set(range(self.n_workers)),
            None,
        )
        while pending:
            ready = wait([conns[r] for r in pending] + list(sentinels), timeout=0.05)
            if stop() and self._state is not None:
                self._state.arrays["control"][_STOP_REQUEST] = 1
            for obj in ready:
                rank = sentinels[obj] if obj in sentinels else conns.index(obj)
                if rank not in pending:
                    continue
                message = _receive(conns[rank])
                if message is None:
                    if obj not in sentinels and self._processes[rank].is_alive():
                        continue
                    self._abort()
                    raise self._death(rank)
                status, reply, *trace = message
                pending.discard(rank)
                if status == "error" and error is None:
                    error = (reply, trace[0])
                    self._abort()
                replies[rank] = reply if status == "ok" else None
        if error is not None:
            exc, tb = error
            raise exc from RuntimeError(f"in an engine worker:\n{tb}")
        return replies

    def _death(self, rank):
        proc = self._processes[rank]
        proc.join(timeout=1)  # reap it, so that its exit code is known
        code = proc.exitcode
        how = "exit code unknown" if code is None else f"exit code {code}"
        if code is not None and code < 0:
            how = f"killed by {signal.Signals(-code).name}"
        return WorkerError(
            f"Worker process {rank} of the training engine died unexpectedly "
            f"({how}). Training was aborted; no process or shared memory is left "
            "behind, and the estimator can be fitted again."
        )

    def _abort(self):
        for conn in self._abort_writers:
            try:
                os.write(conn.fileno(), bytes([_ABORT]))
            except OSError:
                pass

    def _release_segments(self):
        for segment in self._segments:
            segment.close(unlink=True)
        self._segments.clear()
        self._state = self._data = None

    def close(self):
        """Stop the workers and unlink the shared memory."""
        self._state = self._data = None
        self._finalizer()


def n_workers_for(n_jobs):
    """Processes to start for ``n_jobs``: never more than the cores, or 8."""
    return max(1, min(effective_n_jobs(n_jobs), cpu_count(), _MAX_SHARDS))


def reason_not_to_start():
    """Why this process should not start workers, or None if it may."""
    if multiprocessing.current_process().daemon:
        return "it runs in a daemonic process, which cannot have children"
    if threading.current_thread() is not threading.main_thread():
        return "it runs outside the main thread"
    try:
        from joblib.parallel import get_active_backend

        backend, _ = get_active_backend()
        if getattr(backend, "nesting_level", 0):
            return "it runs inside a joblib worker, whose cores are already in use"
    except ImportError:
        pass
    return None


def warn_in_process(reason):
    """Say once that the fit runs in-process, and why."""
    warn_user(
        f"MLPClassifier trains in the calling process (as n_jobs=1) because "
        f"{reason}. The fitted weights are the same.",
        UserWarning,
    )
