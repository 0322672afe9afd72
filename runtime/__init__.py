"""Process plumbing under everything else: the garbage collector's tuning, eager tasks,
the embedded Redis, the migrations runner. (The terminal watcher, a client of the API,
is the `watch` package.)"""
