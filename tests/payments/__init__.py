"""Tests of paid courses: orders, providers, receipts and reports."""
