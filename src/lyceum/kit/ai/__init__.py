"""The AI layer, with no domain knowledge: the model provider with its client's timeout
and retries (`models`), what model calls use and cost (`usage`), and the embedding
model (`embedding`). The tutor, the essay scorer and content indexing use it."""
