"""Pure: the dispatcher core of a dynamic carpool line (events in, effects out, time injected)."""
