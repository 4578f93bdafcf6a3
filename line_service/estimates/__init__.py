"""Room: how long a rider should expect to wait, from the line's history or the study's model."""
