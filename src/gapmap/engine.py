"""Run many independent tasks: in-process, on a local Dask cluster, or on an existing one.

:func:`run_tasks` is the one engine for the analyses that repeat over dates (``gapmap series``)
or over perturbed copies (``gapmap uncertainty``). Each task is ``fn(shared, item)``; ``shared``
(the layers every task needs) is shipped to each worker once (``client.scatter(...,
broadcast=True)``), never once per task, and the results come back in item order, the same
whichever way the tasks ran.

- ``workers=1``: a plain loop in this process (no Dask imported);
- ``workers=N`` (default: the machine's cores): a :class:`distributed.LocalCluster` of ``N``
  single-threaded processes, started for the call and shut down after it (processes, not
  threads: the geometry work holds the GIL for most of its time);
- ``scheduler="tcp://host:8786"``: an existing ``dask.distributed`` scheduler, e.g. one started
  with ``dask scheduler`` and ``dask worker`` on other machines. Every worker needs gapmap (same
  version) installed.

A worker process that dies mid-task (killed, out of memory) is replaced by its nanny and the
task runs again elsewhere, up to ``retries`` more times; beyond that the call fails with
:class:`~gapmap.errors.GapmapError` and no results at all, so a caller writing outputs after
the call leaves nothing half-written. An error raised by ``fn`` itself (an
:class:`~gapmap.errors.InputError` about one date, say) is raised unchanged.

>>> run_tasks(lambda shared, x: shared * x, [1, 2, 3], shared=10, workers=1)
[10, 20, 30]
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .errors import GapmapError, InputError

__all__ = ["run_tasks", "Pool", "default_workers", "CONNECT_TIMEOUT_S"]

log = logging.getLogger(__name__)

#: How long to try reaching a scheduler before giving up (the contract allows 30 s).
CONNECT_TIMEOUT_S = 10.0
#: Loggers of Dask that talk at INFO about every worker start; quiet unless asked for.
_DASK_LOGGERS = ("distributed", "dask", "tornado", "bokeh")


def default_workers() -> int:
    """The number of cores this process may use (at least 1).

    >>> default_workers() >= 1
    True
    """
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # not on Linux
        return max(os.cpu_count() or 1, 1)


def run_tasks(
    fn: Callable[[Any, Any], Any],
    items: Iterable,
    *,
    shared: Any = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    retries: int = 2,
) -> list:
    """``[fn(shared, item) for item in items]``, run in parallel on Dask when asked.

    Parameters
    ----------
    fn
        A function of ``(shared, item)``; with Dask it must be picklable (a module-level
        function, or any function cloudpickle can ship).
    items
        The tasks' own inputs, one per task.
    shared
        What every task needs; shipped to each worker once.
    workers
        ``1`` runs in this process without Dask; ``N`` starts a local cluster of ``N``
        processes; ``None`` means one per core (in-process when there is a single item or a
        single core).
    scheduler
        Address of an existing ``dask.distributed`` scheduler (``tcp://host:8786``); overrides
        ``workers``. Unreachable within :data:`CONNECT_TIMEOUT_S` → :class:`InputError`.
    progress
        Called as ``progress(done, total)`` each time a task finishes.
    retries
        How many more times a task runs after a worker died under it (on a local cluster; an
        existing scheduler keeps its own ``distributed.scheduler.allowed-failures``).

    Returns
    -------
    list
        The results, in the order of ``items``.

    Raises
    ------
    InputError
        ``workers`` below 1, or the scheduler cannot be reached.
    GapmapError
        Workers kept dying under a task (no results are returned).

    Examples
    --------
    >>> seen = []
    >>> run_tasks(lambda s, x: x + 1, range(3), workers=1, progress=lambda d, n: seen.append(d))
    [1, 2, 3]
    >>> seen
    [1, 2, 3]
    """
    items = list(items)
    with Pool(workers=workers, scheduler=scheduler, retries=retries, tasks=len(items)) as pool:
        return pool.map(fn, items, shared=shared, progress=progress)


class Pool:
    """Where :func:`run_tasks` runs, kept open for several rounds of tasks.

    A series runs three rounds (plan every date, compute the seam tiles no date computed
    before, finish every date) on one cluster: started once, its workers keep what a round
    left for the next (see ``pin`` of :meth:`map`).

    Parameters
    ----------
    workers, scheduler, retries
        As for :func:`run_tasks`.
    tasks
        How many tasks the first round has (``workers=None`` with one task runs in-process;
        a local cluster has at most this many processes).

    Examples
    --------
    >>> with Pool(workers=1) as pool:
    ...     pool.map(lambda s, x: s + x, [1, 2], shared=10), pool.serial
    ([11, 12], True)
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None,
                 retries: int = 2, tasks: int | None = None) -> None:
        if workers is not None and int(workers) < 1:
            raise InputError("--workers", None, f"must be at least 1, got {workers}",
                             "give --workers 1 to run in this process, or more for a local "
                             "cluster")
        self.workers, self.scheduler, self.retries = workers, scheduler, retries
        self.tasks = tasks
        self._stack = contextlib.ExitStack()
        self.client = None
        self._shared: tuple = (None, None)

    @property
    def serial(self) -> bool:
        """True when the tasks run in this process, one after the other."""
        return self.client is None

    def __enter__(self) -> Pool:
        n = default_workers() if self.workers is None else int(self.workers)
        if self.scheduler is None and (n == 1 or (self.workers is None and self.tasks == 1)
                                       or self.tasks == 0):
            return self
        self._stack.enter_context(_quiet_dask())
        if self.scheduler is None:
            n = min(n, self.tasks) if self.tasks else n
            self.client = self._stack.enter_context(_local_client(n, self.retries))
        else:
            self.client = self._stack.enter_context(_remote_client(self.scheduler))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()
        self.client = None

    def worker_count(self) -> int:
        """How many processes run tasks (1 in-process)."""
        if self.client is None:
            return 1
        return max(len(self.client.scheduler_info().get("workers", {})), 1)

    def map(self, fn: Callable[[Any, Any], Any], items: Iterable, *, shared: Any = None,
            progress: Callable[[int, int], None] | None = None,
            pin: Callable[[int], int] | None = None) -> list:
        """``[fn(shared, item) for item in items]`` on this pool, results in item order.

        ``pin(i)`` names (by number, modulo the workers) the worker that should run item i,
        e.g. the one that ran the same date in the round before and kept its inputs; another
        worker runs it if that one is gone.
        """
        items = list(items)
        if not items:
            return []
        if self.client is None:
            return _run_serial(fn, items, shared, progress)
        return _run_on(self, fn, items, shared, progress, self.retries, pin)

    def _scattered(self, shared: Any, fresh: bool = False):
        """``shared`` on every worker, shipped once for all the rounds that use it."""
        obj, fut = self._shared
        if fresh or fut is None or obj is not shared:
            # A list of one, so that a shared list or dict is shipped whole, not per element.
            [fut] = self.client.scatter([shared], broadcast=True, hash=False)
            self._shared = (shared, fut)
        return fut


def _run_serial(fn, items: Sequence, shared, progress) -> list:
    out = []
    for i, item in enumerate(items):
        out.append(fn(shared, item))
        if progress is not None:
            progress(i + 1, len(items))
    return out


@contextlib.contextmanager
def _quiet_dask():
    """Dask logs each worker start and stop at INFO; keep that out of the user's terminal
    (and the tests') unless gapmap itself was asked to talk (``-vv``)."""
    loud = logging.getLogger("gapmap").isEnabledFor(logging.DEBUG)
    saved = {name: logging.getLogger(name).level for name in _DASK_LOGGERS}
    if not loud:
        for name in _DASK_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _local_client(n: int, retries: int):
    import dask
    from distributed import Client, LocalCluster

    log.info("starting a local Dask cluster of %d processes", n)
    # A task under which a worker dies is rescheduled until it has killed ``retries + 1``
    # workers (the scheduler's "allowed failures"); errors raised by the task itself are not
    # retried: they are about the input and would only repeat.
    with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR,
                               scheduler_port=0)
    try:
        with Client(cluster, set_as_default=False) as client:
            yield client
    finally:
        cluster.close()


@contextlib.contextmanager
def _remote_client(address: str):
    from distributed import Client

    try:
        client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError("--scheduler", None,
                         f"cannot reach the Dask scheduler at {address} within "
                         f"{CONNECT_TIMEOUT_S:.0f} s ({type(exc).__name__})",
                         "start one with `dask scheduler` (and `dask worker ADDRESS` on each "
                         "machine), check the address, or leave --scheduler out") from None
    try:
        if not client.scheduler_info().get("workers"):
            log.warning("the scheduler at %s has no workers yet; tasks wait for one", address)
        yield client
    finally:
        client.close()


def _run_on(pool: Pool, fn, items: Sequence, shared, progress, retries: int, pin) -> list:
    from concurrent.futures import CancelledError

    results: dict[int, Any] = {}
    for attempt in range(retries + 1):
        try:
            _run_round(pool, fn, items, shared, progress, results, pin, fresh=attempt > 0)
            return [results[i] for i in range(len(items))]
        except CancelledError:
            # A dying worker can take the shared inputs with it (the scheduler then cancels
            # the tasks that need them): ship them again and run the tasks not yet done.
            log.warning("workers lost the shared inputs; resending them (attempt %d of %d)",
                        attempt + 2, retries + 1)
    raise GapmapError(f"{len(items) - len(results)} of {len(items)} tasks failed: the workers "
                      "kept dying; nothing was written — check the workers' memory, or rerun "
                      "with --workers 1")


def _run_round(pool: Pool, fn, items: Sequence, shared, progress, results: dict, pin,
               fresh: bool = False) -> None:
    """Run the items not in ``results`` yet, filling it; CancelledError if inputs were lost."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    client = pool.client
    todo = [i for i in range(len(items)) if i not in results]
    shared_f = pool._scattered(shared, fresh=fresh)
    addresses = sorted(client.scheduler_info().get("workers", {})) if pin is not None else []
    futures = []
    for i in todo:
        where = {}
        if addresses:
            where = {"workers": [addresses[pin(i) % len(addresses)]],
                     "allow_other_workers": True}
        futures.append(client.submit(fn, shared_f, items[i], pure=False, **where))
    index = {f.key: i for i, f in zip(todo, futures)}
    try:
        for fut in as_completed(futures, loop=client.loop):
            try:
                results[index[fut.key]] = fut.result()
            except KilledWorker as exc:
                raise GapmapError(
                    f"task {index[fut.key] + 1} of {len(items)} failed: the workers running "
                    f"it died ({type(exc).__name__}); nothing was written — check the "
                    "workers' memory, or rerun with --workers 1") from None
            if progress is not None:
                progress(len(results), len(items))
    finally:
        client.cancel(futures)
