"""Models with numbers: binding parameter values and initial states
(:class:`~splitpinn.numeric.bound.BoundModel`), numerical checks, lambdified and generated
code, and the compiled rules of the marching (``kernels``)."""
