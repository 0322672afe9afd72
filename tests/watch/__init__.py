"""Tests of the `watch` package: `campaigns watch ID`."""
