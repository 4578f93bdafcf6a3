"""The covoiturabilité study: simulate candidate corridors with the real dispatcher core."""
