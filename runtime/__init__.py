"""Process-level plumbing: migrations, the embedded Redis, the all-in-one dev runner."""
