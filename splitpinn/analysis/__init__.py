"""What users do with solutions: comparisons and metrics, sweeps, F–I curves, latency,
spiking-network studies, discrete maps and their error, and figures."""
