"""Backends run segments (k epochs of one trial under one system setting); they never decide."""
