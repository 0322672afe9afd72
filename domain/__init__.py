"""Pure domain logic: no I/O, no ORM, no network. Everything else asks it."""
