"""Tests of the AI tutor and the fake LLM provider it is tested against."""
