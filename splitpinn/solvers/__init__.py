"""Solving: the solution types, the one marching core and its steppers (split-PINN with its
planner and sub-solvers, the classical and fractional references, the vanilla PINN baseline),
events and coupling, and the registry of methods."""
