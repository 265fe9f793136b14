"""Size reports before push: layers, base share, growth, waste, gates."""
