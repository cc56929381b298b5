"""Course content: checking uploads, extracting their text, chunking and embedding it."""
