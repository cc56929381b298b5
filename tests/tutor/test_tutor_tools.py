"""The tutor's tool calls as `tutor.llm.run_tool` runs them for the model: arguments
checked against the tools' schemas, and every refusal an error the model reads as the
tool's result rather than an exception that would fail the answer."""

from __future__ import annotations

from typing import Any

import pytest

from lyceum.tutor.llm import TOOL_NAMES, TUTOR_TOOLS, TutorDeps, run_tool


class Tools:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def search_course_material(self, query: str) -> str:
        self.calls.append(("search_course_material", query))
        return f"<sources>{query}</sources>"

    async def get_lesson(self, lesson: int) -> str:
        self.calls.append(("get_lesson", lesson))
        return f"<lesson n={lesson}>"

    async def get_my_progress(self) -> str:
        self.calls.append(("get_my_progress", None))
        return "<learner_progress>50%</learner_progress>"

    async def search_catalog(self, query: str) -> str:
        raise AssertionError("only the catalog advisor searches the catalog")


def test_every_tool_is_declared_with_an_object_schema() -> None:
    assert {
        "search_course_material",
        "get_lesson",
        "get_my_progress",
        "ask_catalog_advisor",
    } == TOOL_NAMES
    for tool in TUTOR_TOOLS:
        assert tool.parameters["type"] == "object" and tool.description
        assert set(tool.parameters["required"]) == set(tool.parameters["properties"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [({"lesson": 3}, 3), ({"lesson": "7"}, 7), ({"lesson": " 12 "}, 12)],
)
async def test_a_lesson_number_is_an_integer_or_a_string_of_one(
    args: dict[str, Any], expected: int
) -> None:
    tools = Tools()
    result, _ = await run_tool(TutorDeps(tools=tools), "get_lesson", args)
    assert tools.calls == [("get_lesson", expected)]
    assert result == f"<lesson n={expected}>"


@pytest.mark.parametrize(
    ("name", "args", "says"),
    [
        ("get_lesson", {"lesson": "--5"}, "`lesson` must be an integer"),
        ("get_lesson", {"lesson": "²"}, "`lesson` must be an integer"),
        ("get_lesson", {"lesson": True}, "`lesson` must be an integer"),
        ("get_lesson", {}, "`lesson` must be an integer"),
        ("search_course_material", {"query": 5}, "`query` must be a string"),
        ("search_course_material", None, "not a JSON object"),
        ("ask_catalog_advisor", {"question": None}, "`question` must be a string"),
    ],
)
async def test_arguments_the_schema_does_not_allow_are_an_error_for_the_model(
    name: str, args: dict[str, Any] | None, says: str
) -> None:
    tools = Tools()
    result, used = await run_tool(TutorDeps(tools=tools), name, args)
    assert tools.calls == []
    assert result.startswith("<error>") and f"Invalid arguments for {name}" in result
    assert says.replace("`", "") in result.replace("`", "")
    assert (used.tokens_in, used.tokens_out) == (0, 0)


async def test_an_unknown_tool_is_named_with_the_real_ones() -> None:
    result, _ = await run_tool(TutorDeps(tools=Tools()), "delete_everything", {})
    assert "There is no tool delete_everything" in result
    assert all(name in result for name in TOOL_NAMES)


async def test_the_learners_progress_marks_the_answer_personal() -> None:
    deps = TutorDeps(tools=Tools())
    await run_tool(deps, "search_course_material", {"query": "ATP"})
    assert not deps.used_personal_data
    # Even with arguments it does not take: the answer used the learner's data.
    await run_tool(deps, "get_my_progress", None)
    assert deps.used_personal_data
