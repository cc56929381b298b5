"""Infrastructure with no domain knowledge: database, jobs, cache, mail, errors, logging."""
