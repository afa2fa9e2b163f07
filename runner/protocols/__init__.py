"""Evaluation protocols beyond one train/validation/test split (issue 16: Matbench's 5 folds)."""
