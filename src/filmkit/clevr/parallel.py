"""Run one picklable job over many tasks in worker processes, each worker with a single numpy thread.

Workers are started with ``spawn`` (safe on every platform and inside threaded parents) and each gets the job
once, at start-up, rather than with every task. Work is per image and independent, so one thread per process
uses every core without the processes' thread pools fighting over them.

Example::

    from filmkit.clevr.parallel import run_parallel

    run_parallel(str.upper, ["a", "b"], workers=2, on_result=print)  # prints A and B, in either order
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")

_job: Callable[[Any], Any] | None = None  # the job of this worker process


def available_cores() -> int:
    """Cores this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_parallel(
    job: Callable[[Any], Any],
    tasks: Iterable[Any],
    workers: int | None,
    on_result: Callable[[Any], None],
) -> None:
    """Call ``job(task)`` for every task and ``on_result`` with each result as it arrives (in any order).

    ``workers=None`` uses every available core; with one worker (or one task) everything runs in this process.
    An exception in a job or in ``on_result`` stops the workers and propagates.

    >>> results = []
    >>> run_parallel(abs, [-1, -2], workers=1, on_result=results.append)
    >>> results
    [1, 2]
    """
    tasks = list(tasks)
    workers = min(workers or available_cores(), len(tasks))
    if workers <= 1:
        for task in tasks:
            on_result(job(task))
        return
    context = multiprocessing.get_context("spawn")
    with _single_threaded_children(), context.Pool(workers, initializer=_install_job, initargs=(job,)) as pool:
        for result in pool.imap_unordered(_run_job, tasks):
            on_result(result)


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Spawned children read these variables when they import numpy: one BLAS/OpenMP thread each."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _install_job(job: Callable[[Any], Any]) -> None:
    global _job
    _job = job
    # Ctrl-C is the parent's to handle: it stops the pool; workers would only print tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_job(task: Any) -> Any:
    assert _job is not None, "worker started without a job"
    return _job(task)
