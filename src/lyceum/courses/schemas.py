"""Request and response bodies of courses, modules and lessons."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from iso4217 import Currency as Iso4217
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    HttpUrl,
    StrictBool,
    StringConstraints,
)

from lyceum.kit.pagination import Page
from lyceum.kit.validation import NO_NUL, JsonInt, VisibleTitle, integral_float
from lyceum.kit.validation import RequestModel as Strict
from lyceum.models.courses import CourseLevel, CourseStatus, LessonKind

Title = VisibleTitle
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=120)]
Markdown = Annotated[str, Field(max_length=200_000, pattern=NO_NUL)]
Tag = Annotated[str, StringConstraints(pattern=r"^[^\x00,]{1,50}$")]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")]
Category = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,79}$")]
# ISO 4217 codes with a minor unit (funds codes and metals are not sellable in): the
# same list lyceum.payments.money prices in, published as the schema's enum.
_ISO_CURRENCIES = frozenset(c.code for c in Iso4217 if c.exponent is not None)


def _iso_currency(code: str) -> str:
    if code not in _ISO_CURRENCIES:
        raise ValueError(f"{code} is not an ISO 4217 currency code")
    return code


Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    AfterValidator(_iso_currency),
    Field(json_schema_extra={"enum": sorted(_ISO_CURRENCIES)}),
]
Minutes = Annotated[int, Field(ge=1, le=1_000, strict=True), BeforeValidator(integral_float)]
Seconds = Annotated[int, Field(ge=1, le=86_400, strict=True), BeforeValidator(integral_float)]


class Price(Strict):
    amount_cents: JsonInt = Field(
        ge=0,
        le=100_000_000,
        description="The price in the currency's minor units (ISO 4217 exponent: cents "
        "for USD, 1/1000 for KWD, BHD, OMR and JOD, whole yen for JPY); 0 means free.",
    )
    currency: Currency = Field(default="USD", description="An ISO 4217 code.")


class CourseCreate(Strict):
    title: Title
    slug: Slug | None = Field(default=None, description="Derived from the title when omitted.")
    subtitle: Annotated[str, Field(max_length=300, pattern=NO_NUL)] = ""
    description: Markdown = ""
    language: Language = "en"
    level: CourseLevel = CourseLevel.beginner
    category: Category = "general"
    tags: Annotated[list[Tag], Field(max_length=20)] = []
    price: Price = Price(amount_cents=0)


class CourseUpdate(Strict):
    """Only the fields sent change; `null` leaves a field as it is."""

    title: Title | None = None
    slug: Slug | None = None
    subtitle: Annotated[str, Field(max_length=300, pattern=NO_NUL)] | None = None
    description: Markdown | None = None
    language: Language | None = None
    level: CourseLevel | None = None
    category: Category | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] | None = None
    price: Price | None = None


class InstructorOut(BaseModel):
    id: uuid.UUID
    full_name: str


class CatalogItem(BaseModel):
    id: uuid.UUID
    slug: str
    title: str
    subtitle: str
    language: str
    level: CourseLevel
    category: str
    tags: list[str]
    price: Price
    status: CourseStatus
    instructors: list[InstructorOut]
    enrollment_count: int
    rating_average: float | None
    rating_count: int
    published_at: dt.datetime | None
    cover_url: str | None = Field(default=None, description="1280x720 WebP, when set.")
    snippet: str | None = Field(
        default=None,
        description="With `q`: an HTML fragment, the one string of the API that is HTML: "
        "the matching course text, escaped, with hits wrapped in <mark>.",
    )


class CatalogPage(Page[CatalogItem]):
    did_you_mean: str | None = Field(
        default=None,
        description="With `q` and no results: the query with misspelt words corrected "
        "(`pyhton` -> `python`), when that finds courses.",
    )
    suggestions: list[str] = Field(
        default_factory=list,
        description="With `q` and no results: titles of courses the corrected query finds, "
        "else titles that look like the query.",
    )


class LessonSummary(BaseModel):
    id: uuid.UUID
    title: str
    kind: LessonKind
    estimated_minutes: int
    is_preview: bool
    position: int


class ModuleOut(BaseModel):
    id: uuid.UUID
    title: str
    position: int
    lessons: list[LessonSummary]


class CourseDetail(CatalogItem):
    description: str
    modules: list[ModuleOut]
    lesson_count: int
    total_minutes: int


class ModuleCreate(Strict):
    title: Title


class ModuleUpdate(Strict):
    title: Title


class Reorder(Strict):
    ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=500)] = Field(
        description="Every id of the collection, in the new order."
    )


class LessonCreate(Strict):
    title: Title
    kind: Literal["text", "video", "file"] = Field(
        default="text",
        description="A video lesson may be drafted before its URL is known, a file lesson "
        "before its file is chosen; publishing the course needs both.",
    )
    content: Markdown = ""
    video_url: HttpUrl | None = None
    duration_seconds: Seconds | None = None
    file_id: uuid.UUID | None = Field(
        default=None, description="A file of this course (POST /courses/{id}/files)."
    )
    estimated_minutes: Minutes = 10
    is_preview: StrictBool = False


class LessonUpdate(Strict):
    """Only the fields sent change; `null` leaves a field as it is, except `video_url`,
    `duration_seconds` and `file_id`, which it clears."""

    title: Title | None = None
    content: Markdown | None = None
    video_url: HttpUrl | None = None
    duration_seconds: Seconds | None = None
    file_id: uuid.UUID | None = None
    estimated_minutes: Minutes | None = None
    is_preview: StrictBool | None = None


class LessonOut(LessonSummary):
    course_id: uuid.UUID
    module_id: uuid.UUID
    content: str = Field(description="The lesson body (Markdown).")
    video_url: str | None
    duration_seconds: int | None
    file_id: uuid.UUID | None = Field(description="The course file a `file` lesson shows.")
    updated_at: dt.datetime


class CoInstructor(Strict):
    user_id: uuid.UUID
