"""Reading uploaded documents, with no domain knowledge: what a file is (magic bytes,
safe names, archive checks: `filetypes`) and its text (PDF pages, DOCX headings,
Markdown, in the sandbox under budgets: `extraction`). Course files and essays use it."""
