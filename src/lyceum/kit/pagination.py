"""The one pagination envelope every list endpoint answers with."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

MAX_PAGE_SIZE = 100


class PageParams(BaseModel):
    page: int = Field(default=1, ge=1, le=100_000)
    size: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


async def _page_params(
    page: Annotated[int, Query(ge=1, le=100_000, description="1-based page number.")] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")] = 20,
) -> PageParams:
    return PageParams(page=page, size=size)


Paging = Annotated[PageParams, Depends(_page_params)]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """`items` holds this page; `total` counts every match; `pages` is the page count."""

    items: list[T]
    total: int = Field(ge=0)
    page: int = Field(ge=1)
    size: int = Field(ge=1)
    pages: int = Field(ge=0)

    @classmethod
    def of_all(cls, items: list[T]) -> Page[T]:
        """A list that is never long (e.g. one user's sessions), as a single page."""
        size = max(len(items), 1)
        return cls(items=items, total=len(items), page=1, size=size, pages=1 if items else 0)

    @classmethod
    def of(cls, items: list[T], total: int, params: PageParams) -> Page[T]:
        pages = (total + params.size - 1) // params.size
        return cls(items=items, total=total, page=params.page, size=params.size, pages=pages)
