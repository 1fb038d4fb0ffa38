"""Where sweeps and fits solve: in this process, in local worker processes (joblib/loky,
``jobs``) or on the workers of a Dask cluster (``scheduler``), and the checks of those options.

:func:`run` calls one function on each task's arguments and yields the results as they finish
(in any order: each result should say which task it answers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from ..errors import ModelError


def cores() -> int:
    """The CPU cores joblib sees (the default number of local workers)."""
    from joblib import cpu_count

    return cpu_count()


def check_workers(jobs, scheduler) -> None:
    """ModelError unless ``jobs`` is None or an integer >= 1, and not given with ``scheduler``."""
    if jobs is not None and scheduler is not None:
        raise ModelError("give either jobs or a scheduler, not both")
    check_count("jobs", jobs)


def check_count(what: str, value) -> None:
    """ModelError unless ``value`` is None or an integer >= 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise ModelError(f"{what} must be an integer >= 1, got {value!r}")


def connect(scheduler: str):
    """A ``distributed.Client`` on the scheduler at ``scheduler`` (e.g. ``tcp://host:8786``);
    ModelError when none answers."""
    from distributed import Client

    try:
        return Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ModelError(f"no Dask scheduler answers at {scheduler!r}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") \
            from None


def workers(client) -> int:
    """The Dask cluster's threads (its parallel slots)."""
    return sum(client.nthreads().values())


def run(function: Callable, tasks: Iterable[tuple], jobs: int = 1, client=None) -> Iterator:
    """``function(*task)`` for each task, yielded as they finish: on the Dask ``client`` if
    given, else in ``jobs`` local processes (1: here, in order)."""
    if client is not None:
        yield from _run_dask(client, function, tasks)
    elif jobs == 1:
        yield from (function(*task) for task in tasks)
    else:
        from joblib import Parallel, delayed

        yield from Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")(
            delayed(function)(*task) for task in tasks)


def _run_dask(client, function, tasks) -> Iterator:
    from distributed import as_completed

    futures = [client.submit(function, *task, pure=False) for task in tasks]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.cancel(futures)
