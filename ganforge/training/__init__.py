"""Training: the loop, checkpoints, EMA, logging and sample grids."""
