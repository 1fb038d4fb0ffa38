"""The neuron model library: ``get(name)`` returns a fresh :class:`splitpinn.Model`.

Names: ``lif``, ``izhikevich`` (presets RS IB CH FS LTS TC RZ), ``hh``, ``fhn``,
``morris-lecar``, ``frac-lif``, ``fo-hh``, ``frac-izhikevich``, ``ilif``, ``da-lif``,
``arslif``, ``linear-lif``, ``adex``.
"""

from __future__ import annotations

from collections.abc import Callable

from splitpinn.declare.model import Model
from splitpinn.errors import ModelError

from .adex import adex
from .arslif import arslif
from .da_lif import da_lif
from .fhn import fhn
from .hh import fo_hh, hh
from .ilif import ilif
from .izhikevich import frac_izhikevich, izhikevich
from .lif import frac_lif, lif
from .linear_lif import linear_lif
from .morris_lecar import morris_lecar

LIBRARY: dict[str, Callable[[], Model]] = {
    "lif": lif,
    "izhikevich": izhikevich,
    "hh": hh,
    "fhn": fhn,
    "morris-lecar": morris_lecar,
    "frac-lif": frac_lif,
    "fo-hh": fo_hh,
    "frac-izhikevich": frac_izhikevich,
    "linear-lif": linear_lif,
    "ilif": ilif,
    "da-lif": da_lif,
    "arslif": arslif,
    "adex": adex,
}


def names() -> list[str]:
    """Names of the library models."""
    return list(LIBRARY)


def get(name: str) -> Model:
    """A new instance of the library model ``name``; raises ModelError for unknown names."""
    try:
        return LIBRARY[name]()
    except KeyError:
        raise ModelError(f"unknown model {name!r} (known: {', '.join(LIBRARY)})") from None


__all__ = ["LIBRARY", "get", "names"]
