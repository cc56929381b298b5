"""Grading objective questions, and the checks that make short-answer patterns safe.

Everything here is pure: a question's key and a learner's response in, points out.

Regular expressions are written by instructors and run on learners' input, so a pattern
is vetted when it is saved and matched under bounds when it is used:

* at most `MAX_PATTERN_LENGTH` characters, compiled by Python's `re` (errors are 422);
* no backreferences or conditionals, and no quantified group that itself contains a
  quantifier or an alternation (`(a+)+`, `(a|ab)*`): the shapes whose backtracking
  grows exponentially with the input;
* a timed probe on adversarial inputs of the maximum answer length, which catches the
  polynomial blow-ups (`\\d*\\d*\\d*x`) the shape check lets through;
* answers are matched with `fullmatch` and are at most `MAX_SHORT_ANSWER_CHARS` long.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from lyceum.models.assessments import QuestionKind

MAX_PATTERN_LENGTH: Final = 200
MAX_SHORT_ANSWER_CHARS: Final = 300
# A vetted pattern answers a probe in microseconds; one that needs this long on a
# maximum-length input is refused.
PROBE_BUDGET_SECONDS: Final = 0.02
MAX_PROBE_CHARACTERS: Final = 12
# Repeating quantifiers allowed in one pattern: with the probe's growth factor this
# bounds how long the last probe below the budget can take.
MAX_REPEATS: Final = 8
_QUANTIFIER_CHARS: Final = "*+?{"
_BOUNDED = re.compile(r"\{(\d*)(?:,(\d*))?\}")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class UnsafePattern(ValueError):
    """The pattern is invalid or could take too long to match; the message says why."""


@dataclass(frozen=True, slots=True)
class ItemGrade:
    awarded: float
    correct: bool


# --- patterns ------------------------------------------------------------------------


@dataclass
class _Group:
    quantified_inside: bool = False
    alternation: bool = False


def _quantifier_at(pattern: str, index: int) -> tuple[int, bool] | None:
    """(length, repeats more than once) of a quantifier starting at `index`, if any."""
    if index >= len(pattern):
        return None
    char = pattern[index]
    if char in "*+":
        lazy = index + 1 < len(pattern) and pattern[index + 1] in "?+"
        return (2 if lazy else 1), True
    if char == "?":
        return 1, False
    if char == "{":
        match = _BOUNDED.match(pattern, index)
        if match is None or (match.group(1) == "" and match.group(2) is None):
            return None
        low, high = match.group(1), match.group(2)
        # {n} repeats more than once when n > 1; {n,} and {n,m} when m is open or > 1.
        many = int(low or "0") > 1 if high is None else high == "" or int(high) > 1
        end = match.end()
        if end < len(pattern) and pattern[end] in "?+":
            end += 1
        return end - index, many
    return None


def _check_shape(pattern: str) -> None:
    stack: list[_Group] = [_Group()]
    repeats = 0
    index = 0
    in_class = False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            following = pattern[index + 1 : index + 2]
            if not in_class and following.isdigit() and following != "0":
                raise UnsafePattern("Backreferences (\\1) are not allowed in answer patterns.")
            index += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
            index += 1
            continue
        if char == "[":
            in_class = True
            # A `]` right after `[` or `[^` is a literal member of the class.
            index += 1
            if pattern[index : index + 1] == "^":
                index += 1
            if pattern[index : index + 1] == "]":
                index += 1
            continue
        if char == "(":
            if pattern.startswith("(?P=", index) or pattern.startswith("(?(", index):
                raise UnsafePattern(
                    "Backreferences and conditionals are not allowed in answer patterns."
                )
            stack.append(_Group())
            index += 1
            continue
        if char == ")":
            if len(stack) == 1:
                index += 1
                continue
            group = stack.pop()
            quantifier = _quantifier_at(pattern, index + 1)
            if quantifier is not None and quantifier[1]:
                repeats += 1
                if group.quantified_inside:
                    raise UnsafePattern(
                        "Nested quantifiers such as (a+)+ can take exponential time; "
                        "rewrite the pattern without a repeated group that repeats inside."
                    )
                if group.alternation:
                    raise UnsafePattern(
                        "A repeated alternation such as (a|ab)* can take exponential time; "
                        "use a character class or rewrite the pattern."
                    )
            parent = stack[-1]
            parent.quantified_inside |= group.quantified_inside or bool(
                quantifier and quantifier[1]
            )
            parent.alternation |= group.alternation
            index += 1 + (quantifier[0] if quantifier else 0)
            continue
        if char == "|":
            stack[-1].alternation = True
            index += 1
            continue
        quantifier = _quantifier_at(pattern, index)
        if quantifier is not None:
            if quantifier[1]:
                repeats += 1
                stack[-1].quantified_inside = True
            index += quantifier[0]
            continue
        index += 1
    if repeats > MAX_REPEATS:
        raise UnsafePattern(f"Patterns may repeat (*, +, {{n,m}}) at most {MAX_REPEATS} times.")


def _probe_characters(pattern: str) -> list[str]:
    """Characters that make backtracking engines work hardest when repeated: the
    pattern's own letters and digits, and a few that classes commonly match."""
    characters = {"a", "1", " ", "."}
    characters |= {char for char in pattern if char.isalnum()}
    return sorted(characters)[:MAX_PROBE_CHARACTERS]


def _probe_lengths() -> list[int]:
    """Answer lengths growing by a quarter at a time: a pattern whose time grows like
    n^k is caught at the first length where it exceeds the budget, having spent at
    most 1.25^k times the budget on the previous one."""
    lengths = [8]
    while lengths[-1] < MAX_SHORT_ANSWER_CHARS:
        lengths.append(min(MAX_SHORT_ANSWER_CHARS, math.ceil(lengths[-1] * 1.25)))
    return lengths


def compile_answer_pattern(pattern: str) -> re.Pattern[str]:
    """Vet and compile an instructor's answer pattern (matched case-insensitively)."""
    if not pattern:
        raise UnsafePattern("The pattern is empty.")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise UnsafePattern(f"Patterns are at most {MAX_PATTERN_LENGTH} characters.")
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        raise UnsafePattern(f"The pattern is not a valid regular expression: {error}.") from None
    except (RecursionError, OverflowError):
        raise UnsafePattern("The pattern is too deeply nested.") from None
    _check_shape(pattern)
    characters = _probe_characters(pattern)
    for length in _probe_lengths():
        probes = [char * length + "\u0001" for char in characters]
        probes.append(("a1 " * length)[:length] + "\u0001")
        for probe in probes:
            started = time.perf_counter()
            compiled.fullmatch(probe)
            if time.perf_counter() - started > PROBE_BUDGET_SECONDS:
                raise UnsafePattern(
                    "The pattern takes too long to match long answers (overlapping "
                    "repeats such as \\d*\\d*); simplify it."
                )
    return compiled


# --- normalising answers -------------------------------------------------------------


def normalise_text(text: str) -> str:
    """Unicode NFC, trimmed, inner whitespace collapsed to one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def parse_number(text: str) -> float | None:
    """`3.14`, `-2`, `1e3`, and `3,14` (a decimal comma) as numbers; anything else None."""
    cleaned = normalise_text(text).replace(" ", "")
    if cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    if not _NUMBER.fullmatch(cleaned):
        return None
    value = float(cleaned)
    return value if math.isfinite(value) else None


# --- grading -------------------------------------------------------------------------


def _choice_grade(points: float, correct: Sequence[str], chosen: Sequence[str]) -> ItemGrade:
    right = set(correct)
    picked = set(chosen)
    return ItemGrade(points if picked == right else 0.0, picked == right)


def _partial_grade(points: float, correct: Sequence[str], chosen: Sequence[str]) -> ItemGrade:
    """Each right option earns its share; each wrong one takes a share back; never
    below zero."""
    right = set(correct)
    picked = set(chosen)
    share = points / len(right)
    earned = share * len(picked & right) - share * len(picked - right)
    return ItemGrade(round(max(0.0, earned), 2), picked == right)


def grade_short_answer(key: Mapping[str, Any], points: float, text: str) -> ItemGrade:
    answer = normalise_text(text)
    match = key.get("match", "exact")
    if match == "numeric":
        value = parse_number(answer)
        expected = float(key.get("number") or 0.0)
        tolerance = float(key.get("tolerance") or 0.0)
        # A little slack for binary floating point: 0.1 + 0.2 is within 0 of 0.3.
        ok = value is not None and abs(value - expected) <= tolerance + 1e-9 * max(
            1.0, abs(expected)
        )
        return ItemGrade(points if ok else 0.0, ok)
    accepted: list[str] = list(key.get("accepted") or [])
    if match == "regex":
        # Patterns were vetted when the question was saved; `re` caches the compiled form.
        ok = len(answer) <= MAX_SHORT_ANSWER_CHARS and any(
            re.compile(pattern, re.IGNORECASE).fullmatch(answer) for pattern in accepted
        )
    elif match == "case_insensitive":
        folded = answer.casefold()
        ok = any(folded == normalise_text(item).casefold() for item in accepted)
    else:
        ok = any(answer == normalise_text(item) for item in accepted)
    return ItemGrade(points if ok else 0.0, ok)


def grade_item(
    kind: QuestionKind, key: Mapping[str, Any], points: float, response: Mapping[str, Any] | None
) -> ItemGrade | None:
    """The grade of one objective item; None for an essay item (an instructor grades
    it). No response earns nothing."""
    if kind is QuestionKind.essay:
        return None
    if not response:
        return ItemGrade(0.0, False)
    if kind is QuestionKind.single_choice:
        choice = response.get("choice")
        return _choice_grade(points, [key["correct"]], [choice] if choice else [])
    if kind is QuestionKind.multiple_choice:
        chosen = list(response.get("choices") or [])
        correct = list(key["correct"])
        if key.get("partial_credit"):
            return _partial_grade(points, correct, chosen)
        return _choice_grade(points, correct, chosen)
    if kind is QuestionKind.true_false:
        ok = response.get("value") is key["correct"]
        return ItemGrade(points if ok else 0.0, ok)
    return grade_short_answer(key, points, str(response.get("text") or ""))


# --- essays --------------------------------------------------------------------------

# Words, keeping "don't" and "well-known" whole (the apostrophe may be typographic).
_WORD = re.compile(r"\w+(?:['\u2019\-]\w+)*")


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def late_days(seconds_late: float) -> int:
    """Started days after the due time: one second late is one day late."""
    return max(0, math.ceil(seconds_late / 86400))
