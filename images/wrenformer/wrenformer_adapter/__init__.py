"""Wrenformer (aviary-models 1.2.1: Wren's Wyckoff representation in a transformer), for mateval."""
