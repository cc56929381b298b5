"""Learning analytics: learner events (from apps and from the platform itself), their
monthly-partitioned store and incremental rollups, xAPI statements, and reports."""
