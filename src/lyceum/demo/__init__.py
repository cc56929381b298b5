"""Demo data: a small real catalog for trying Lyceum out (`lyceum demo`)."""
