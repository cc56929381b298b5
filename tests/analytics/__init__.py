"""Tests of learning analytics: ingest, facts, storage, rollups, reports, xAPI."""
