"""Many processes, one owner per line: PostgreSQL advisory locks, fencing, presence."""
