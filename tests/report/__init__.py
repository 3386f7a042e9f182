"""Tests of the report's sections, on hand-made studies (no training)."""
