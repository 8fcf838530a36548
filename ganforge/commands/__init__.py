"""CLI commands beyond train/sample/interpolate/info, one module per topic; each has `register(app)`."""
