"""Course recommendations: a stored, versioned item-kNN + content + popularity model."""
