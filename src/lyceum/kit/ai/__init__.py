"""The AI layer, with no domain knowledge: the model provider (`models`) and the
embedding model (`embedding`). The tutor, the essay scorer and content indexing use it."""
