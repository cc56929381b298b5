"""The browser tests assert through Playwright's `expect`, never on a one-off read.

`locator.is_visible()`, `.count()` and `.inner_text()` answer at once, from whatever page
the browser shows at that instant. After a click that submits a form, that can still be
the page before it (the click returns once the navigation has started, not when the next
page is in), so `assert page.locator(".codes li").count() == 10` failed in CI on a busy
machine while the right page was on its way. `expect(...)` retries until the page agrees
or its timeout passes. This test reads the browser tests' source and fails on an
`assert` built on such a read, so the next one is caught before CI is.

The same race failed CI again on `input_value()`, a read this check did not list: the
chat shows the sent message (the room's broadcast) a moment before the page clears the
input (the server's acknowledgement), and `assert ....input_value() == ""` read the
input in between. Every Playwright read that answers at once is listed now, with the
page-level forms that take a selector (`page.inner_text("main")`), and `evaluate`, whose
page state is waited for with `page.wait_for_function` instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

HERE = Path(__file__).parent

# Reads that return the page's state at this instant rather than waiting for it.
INSTANT_READS = {
    "is_visible",
    "is_hidden",
    "is_checked",
    "is_enabled",
    "is_disabled",
    "is_editable",
    "count",
    "inner_text",
    "inner_html",
    "text_content",
    "all_inner_texts",
    "all_text_contents",
    "input_value",
    "get_attribute",
    "title",
    "evaluate",
}


def instant_reads_in_asserts(source: str) -> list[int]:
    """The lines of `assert` statements that test a Playwright instant read."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Assert):
            continue
        for inner in ast.walk(node.test):
            if (
                isinstance(inner, ast.Call)
                and isinstance(inner.func, ast.Attribute)
                and inner.func.attr in INSTANT_READS
                # `list.count(x)` takes an argument; a locator's doesn't. The other reads
                # are Playwright's with or without one (`page.inner_text("main")`).
                and not (inner.func.attr == "count" and inner.args)
            ):
                lines.append(node.lineno)
                break
    return lines


def test_the_check_finds_an_instant_read_in_an_assert() -> None:
    source = (
        "def t(page):\n"
        "    page.click('x')\n"
        "    assert page.locator('.codes li').count() == 10\n"
        "    assert not page.get_by_role('alert').is_visible()\n"
        "    assert 'x' in page.locator('p').inner_text().lower()\n"
        "    assert ['a', 'b'].count('a') == 1\n"
        "    expect(page.locator('.codes li')).to_have_count(10)\n"
        "    assert page.get_by_label('Your message').input_value() == ''\n"
        "    assert 'Score' in page.inner_text('main')\n"
        "    assert page.get_by_role('link').get_attribute('href') == '/x'\n"
        "    assert page.evaluate('document.activeElement.id') == 'main'\n"
        "    assert page.title() != '1'\n"
        "    expect(page.get_by_label('Your message')).to_have_value('')\n"
    )
    assert instant_reads_in_asserts(source) == [3, 4, 5, 8, 9, 10, 11, 12]


def test_no_browser_test_asserts_on_an_instant_read() -> None:
    found = [
        f"{path.name}:{line}"
        for path in sorted(HERE.glob("test_*.py"))
        if path.name != Path(__file__).name
        for line in instant_reads_in_asserts(path.read_text())
    ]
    assert not found, f"use expect(locator).to_...() instead of asserting a read: {found}"
