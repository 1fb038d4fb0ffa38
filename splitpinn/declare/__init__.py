"""Declaring models: :class:`~splitpinn.declare.model.Model` and its parts, equations from
Brian2-style text, units, stimuli and the special functions of rate expressions.  The lowest
layer: it imports nothing else of the package but ``errors``."""
