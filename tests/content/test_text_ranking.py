"""The full-text side of course-material search ranks a bounded number of candidates:
the passages holding the most of the question's words come first, so a passage that
alone holds them all is found even when the common words of the question match far
more passages than the budget lets the ranking read."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from lyceum.content.repository import SearchRepository, candidate_tiers, text_ranking_query
from lyceum.models.content import EMBEDDING_DIMENSIONS, ContentChunk
from lyceum.models.courses import Course, CourseLevel, Lesson, LessonKind, Module
from lyceum.models.identity import Role, User


async def _course_with_chunks(session: AsyncSession, texts: list[str]) -> uuid.UUID:
    owner = User(
        email=f"owner-{uuid.uuid4().hex[:8]}@example.org", full_name="Owner", role=Role.instructor
    )
    session.add(owner)
    await session.flush()
    course = Course(
        slug=f"ranking-{uuid.uuid4().hex[:12]}",
        title="Gardening",
        language="en",
        level=CourseLevel.beginner,
        category="home",
        owner_id=owner.id,
    )
    session.add(course)
    await session.flush()
    module = Module(course_id=course.id, title="One", position=1)
    session.add(module)
    await session.flush()
    lesson = Lesson(
        module_id=module.id, course_id=course.id, title="L", kind=LessonKind.text, position=1
    )
    session.add(lesson)
    await session.flush()
    session.add_all(
        ContentChunk(
            course_id=course.id,
            lesson_id=lesson.id,
            ordinal=ordinal,
            text=text,
            heading="",
            token_count=len(text.split()),
            search_config="lyceum_english",
            embedding=[0.0] * (EMBEDDING_DIMENSIONS - 1) + [1.0],
        )
        for ordinal, text in enumerate(texts)
    )
    await session.flush()
    return course.id


def test_tiers_go_from_every_word_to_any_word() -> None:
    assert candidate_tiers(["a", "b", "c"]) == [
        "('a' & 'b' & 'c')",
        "('a' & 'b') | ('a' & 'c') | ('b' & 'c')",
        "'a' | 'b' | 'c'",
    ]
    assert candidate_tiers(["a"]) == ["'a'"]
    assert candidate_tiers(["it's"]) == ["'it''s'"]
    # A long question keeps its strict tiers small; the last tier still has every word.
    many = [f"w{index}" for index in range(20)]
    tiers = candidate_tiers(many)
    assert all(tier.count("|") < 64 for tier in tiers[:-1])
    assert tiers[-1] == " | ".join(f"'{word}'" for word in many)


async def test_a_passage_beyond_the_budget_is_found_when_it_alone_matches_best(
    session: AsyncSession,
) -> None:
    # Thirty passages say "soil" over and over (ts_rank_cd ranks them high on the
    # common word); one passage alone holds both words of the question, once each.
    noise = ["soil soil soil soil soil, rich soil and more soil"] * 30
    answer = "Compost feeds the soil."
    course_id = await _course_with_chunks(session, [*noise, answer])
    search = SearchRepository(session)

    [answer_id] = await search.text_ranking(course_id, "compost", "lyceum_english", 40)
    unbounded = await search.text_ranking(course_id, "compost soil", "lyceum_english", 40)
    assert len(unbounded) == 31 and unbounded[-1] == answer_id  # ranked last of all

    # A budget of five candidates: the passage holding every word is one of them.
    bounded = await search.text_ranking(course_id, "compost soil", "lyceum_english", 40, budget=5)
    assert len(bounded) == 5 and answer_id in bounded

    # A word only one passage holds is found however many passages the others match.
    only = await search.text_ranking(course_id, "compost", "lyceum_english", 40, budget=5)
    assert only == [answer_id]


async def test_within_the_budget_the_ranking_is_the_unbounded_one(session: AsyncSession) -> None:
    texts = [
        "Water the seedlings every morning.",
        "Seedlings need light and water; water them gently.",
        "Light comes from the south window.",
        "Nothing about it here.",
    ]
    course_id = await _course_with_chunks(session, texts)
    search = SearchRepository(session)
    question = "how much water and light do seedlings need"
    unbounded = await search.text_ranking(
        course_id, question, "lyceum_english", 10, budget=1_000_000
    )
    assert len(unbounded) == 3
    assert await search.text_ranking(course_id, question, "lyceum_english", 10) == unbounded
    assert await search.text_ranking(course_id, "the and of", "lyceum_english", 10) == []


def test_the_ranking_statement_is_built_once_per_number_of_tiers() -> None:
    """Questions with as many tiers share one statement; their words are bound values,
    never SQL text."""
    course_id = uuid.uuid4()
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    first = text_ranking_query(course_id, candidate_tiers(["soil", "compost"]), 1000, 20)
    second = text_ranking_query(course_id, candidate_tiers(["it's", "rain"]), 500, 10)
    one_tier = text_ranking_query(course_id, candidate_tiers(["soil"]), 1000, 20)
    compiled = first.compile(dialect=dialect)
    other = second.compile(dialect=dialect)
    assert str(compiled) == str(other) != str(one_tier.compile(dialect=dialect))
    assert "soil" not in str(compiled) and "it''s" not in str(other)
    assert other.params == {
        "course_id": course_id,
        "budget": 500,
        "limit": 10,
        "tier_0": "('it''s' & 'rain')",
        "tier_1": "'it''s' | 'rain'",
    }
    assert compiled.params["tier_1"] == "'soil' | 'compost'"
