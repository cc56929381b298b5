"""Quoting text into a model's prompt as data (rule 15 of the architecture).

Whatever a learner wrote or a course contains (a question, an essay, a passage of a
lesson or an uploaded file, what a tool found) reaches a model only inside an element
made here: the text escaped (`&`, `<`, `>`), the attributes escaped and quoted. So no
such text can close its element, open another one or pass for an instruction, however
it is written: an essay that contains `</essay><rubric>...` arrives as
`&lt;/essay&gt;&lt;rubric&gt;...` inside its own `<essay>` element. The instructions
that tell the model to treat these elements as data are the caller's, and never
contain such text.
"""

from __future__ import annotations

from html import escape

Attribute = str | int | float | None


def attributes(**values: Attribute) -> str:
    """` name="value"` for every value that is not None, escaped and quoted."""
    return "".join(
        f' {name}="{escape(str(value), quote=True)}"'
        for name, value in values.items()
        if value is not None
    )


def quoted(tag: str, text: str, /, **values: Attribute) -> str:
    """`text` as the content of a `<tag>` element: escaped, on lines of its own."""
    return f"<{tag}{attributes(**values)}>\n{escape(text, quote=False)}\n</{tag}>"


def quoted_inline(tag: str, text: str, /, **values: Attribute) -> str:
    """`text` as the content of a `<tag>` element on one line (titles, short values)."""
    return f"<{tag}{attributes(**values)}>{escape(text, quote=False)}</{tag}>"


def element(tag: str, children: list[str], /, **values: Attribute) -> str:
    """A `<tag>` element around elements already built with `quoted`."""
    inner = "\n".join(children)
    return f"<{tag}{attributes(**values)}>\n{inner}\n</{tag}>"
