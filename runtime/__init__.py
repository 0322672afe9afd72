"""Process plumbing under everything else: Redis names, request ids, the garbage
collector's tuning, background tasks, the embedded Redis, the migrations runner. (The
terminal watcher, a client of the API, is the `watch` package.)"""
