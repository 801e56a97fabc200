"""Runs on disk: atomic writes, the identity that binds a results folder to one run, and the
checkpoint shards of a sweep, each carrying what it was computed from (resume)."""
