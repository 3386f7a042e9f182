"""Tests of caser/: data, windows, model, metrics, training."""
