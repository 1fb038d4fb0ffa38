"""Progress bar on stderr for long solves (tqdm), silent when ``quiet``."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(t_end: float, desc: str, quiet: bool = False) -> tqdm:
    """A bar counting simulated milliseconds up to ``t_end``; update it with ``advance_to``."""
    return tqdm(total=float(t_end), desc=desc, unit="ms", disable=quiet, file=sys.stderr,
                leave=False, dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} ms "
                           "[{elapsed}<{remaining}]")


def advance_to(bar: tqdm, time: float) -> None:
    """Move the bar to simulated time ``time`` (ms)."""
    bar.update(max(0.0, min(time, bar.total) - bar.n))
