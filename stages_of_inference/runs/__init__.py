"""Runs on disk: atomic writes, the identity that binds a results folder to one run, and resume."""
