"""The one process-wide cache of everything derived from a model.

A :class:`~splitpinn.declare.model.Model` is immutable and hashed by content
(:attr:`~splitpinn.declare.model.Model.key`), so what is derived from it — the lambdified
callables of :class:`~splitpinn.numeric.bound.Numeric`, the symbolic analysis and callables of
the splitting plans' sub-problems, the generated sources of
:func:`~splitpinn.numeric.compiled.compiled_model` — is kept here under ``(model.key, what)``:
``models.get("hh")`` twice (two equal objects) does the symbolic work once.  What is keyed by
content other than a model's — the compiled kernels (by their sources, which models with other
stimuli share) and the stage tables (by the trainer's basis) — lives here too, under a key
naming that content.

Values are built on first use, outside any lock (two threads may both build one; the first
stored wins), and never mutated by their users.  The least recently used keys beyond
:data:`MAX_KEYS` are dropped (a sweep over many stimuli makes a model per stimulus).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

#: Keys (models, sources, bases) kept; the least recently used beyond are dropped.
MAX_KEYS = 256

_ENTRIES: OrderedDict[str, dict[Hashable, object]] = OrderedDict()
_LOCK = threading.Lock()  # guards the bookkeeping, never a build


def cached(key: str, what: Hashable, build: Callable[[], T]) -> T:
    """The value ``what`` derived from the content ``key`` (a model's
    :attr:`~splitpinn.declare.model.Model.key`, or another content digest), built by
    ``build()`` on first use.  An exception from ``build`` is not cached."""
    with _LOCK:
        entry = _ENTRIES.get(key)
        if entry is not None and what in entry:
            _ENTRIES.move_to_end(key)
            return entry[what]
    value = build()
    with _LOCK:
        entry = _ENTRIES.setdefault(key, {})
        value = entry.setdefault(what, value)
        _ENTRIES.move_to_end(key)
        while len(_ENTRIES) > MAX_KEYS:
            _ENTRIES.popitem(last=False)
    return value


def entries(key: str) -> dict[Hashable, object]:
    """A copy of what is cached under ``key`` (``what`` -> value), for tests and inspection."""
    with _LOCK:
        return dict(_ENTRIES.get(key, {}))


def clear() -> None:
    """Forget everything cached (the next use rebuilds it)."""
    with _LOCK:
        _ENTRIES.clear()
