"""Files: model files (TOML, LaTeX and Brian2 forms) and NeuroML2 cells."""
