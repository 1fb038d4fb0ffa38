"""Progress bars on stderr (tqdm) for long solves, sweeps and trainings; silent when ``quiet``.

On a terminal the bar redraws itself in place.  When stderr is not a terminal (a log file, a
pipe, a batch system) redrawing would write a carriage return per refresh, thousands over a long
run; there the bar stays silent for the first :data:`LOG_INTERVAL_S` seconds (short runs print
nothing) and then writes one plain line per :data:`LOG_INTERVAL_S` seconds.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

#: Seconds between progress lines when stderr is not a terminal (and before the first).
LOG_INTERVAL_S = 60.0


class _Lines:
    """A stream that turns tqdm's in-place redraws into whole lines (blank redraws dropped)."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        for part in text.replace("\r", "\n").split("\n"):
            if part.strip():
                self.stream.write(part.rstrip() + "\n")

    def flush(self) -> None:
        self.stream.flush()


def _interactive(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def bar(total: float, desc: str, unit: str, quiet: bool = False, **options) -> tqdm:
    """A tqdm bar on stderr: in place on a terminal, a line per :data:`LOG_INTERVAL_S` seconds
    otherwise, nothing when ``quiet``.  ``options`` go to tqdm."""
    stream = sys.stderr
    options = {"leave": False, **options}
    if _interactive(stream):
        return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=stream,
                    dynamic_ncols=True, **options)
    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=_Lines(stream),
                ncols=100, mininterval=LOG_INTERVAL_S, maxinterval=LOG_INTERVAL_S,
                delay=LOG_INTERVAL_S, **options)


def progress_bar(t_end: float, desc: str, quiet: bool = False) -> tqdm:
    """A bar counting simulated milliseconds up to ``t_end``; update it with ``advance_to``."""
    return bar(float(t_end), desc, "ms", quiet,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} ms "
                          "[{elapsed}<{remaining}]")


def advance_to(bar: tqdm, time: float) -> None:
    """Move the bar to simulated time ``time`` (ms)."""
    bar.update(max(0.0, min(time, bar.total) - bar.n))
