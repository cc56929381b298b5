"""The AI tutor: course-grounded answers with citations, streaming, memory and tools."""
