"""Process plumbing under everything else: the garbage collector's tuning, eager tasks,
the embedded Redis, the migrations runner; and the terminal watcher (a client)."""
