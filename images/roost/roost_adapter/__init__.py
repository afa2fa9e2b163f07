"""Roost (Goodall and Lee, Nat. Commun. 2020) through aviary-models 1.2.1, for mateval."""
