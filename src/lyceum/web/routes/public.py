"""Pages for everyone: the home page, sign in and out, the catalog, a course's page."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query
from starlette.responses import Response

from lyceum.web.api import ApiProblem
from lyceum.web.context import FormPage, PageDep, SignedInForm
from lyceum.web.i18n import LANGUAGE_COOKIE, LOCALES
from lyceum.web.signin import end_previous_session, end_session, safe_next, start_session

router = APIRouter(include_in_schema=False)

CATALOG_PAGE_SIZE = 12


@router.get("/")
async def home(page: PageDep) -> Response:
    popular = await page.api.get("courses/popular", params={"size": 6})
    return page.render("public/home.html", popular=popular["items"])


# Sign in and out ------------------------------------------------------------------------


@router.get("/login")
async def login_form(page: PageDep, next: str | None = None) -> Response:
    if page.user is not None:
        return page.redirect(safe_next(next))
    return page.render("public/login.html", next=safe_next(next), email="", problem=None)


@router.post("/login")
async def login(
    page: FormPage,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/learn",
) -> Response:
    try:
        answer = await page.api.post("auth/login", json={"email": email, "password": password})
    except ApiProblem as problem:
        return page.render(
            "public/login.html",
            next=safe_next(next),
            email=email,
            problem=problem,
        )
    await end_previous_session(page)
    if answer.get("mfa_required"):
        return page.render(
            "public/login_mfa.html",
            next=safe_next(next),
            mfa_token=answer["mfa_token"],
            problem=None,
        )
    return start_session(page, answer, next)


@router.post("/login/mfa")
async def login_mfa(
    page: FormPage,
    mfa_token: Annotated[str, Form(max_length=200)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/learn",
) -> Response:
    try:
        answer = await page.api.post(
            "auth/mfa/verify", json={"mfa_token": mfa_token, "code": code.strip()}
        )
    except ApiProblem as problem:
        if problem.slug == "invalid-token":  # the MFA step expired: start again
            return page.render(
                "public/login.html", status=401, next=safe_next(next), email="", problem=problem
            )
        return page.render(
            "public/login_mfa.html",
            next=safe_next(next),
            mfa_token=mfa_token,
            problem=problem,
        )
    await end_previous_session(page)
    return start_session(page, answer, next)


@router.post("/logout")
async def logout(page: SignedInForm) -> Response:
    try:
        await page.api.post("auth/logout")
    except ApiProblem as problem:
        if problem.status != 401:
            raise
    end_session(page)
    return page.redirect("/")


@router.post("/language")
async def choose_language(
    page: FormPage,
    locale: Annotated[str, Form(max_length=12)] = "en",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """The page language: saved on the account when signed in, else in a cookie."""
    chosen = locale if locale in LOCALES else "en"
    if page.user is not None:
        await page.api.patch("users/me", json={"locale": chosen})
    response = page.redirect(safe_next(next, default="/"))
    response.set_cookie(
        LANGUAGE_COOKIE,
        chosen,
        max_age=365 * 86400,
        path="/",
        samesite="lax",
        httponly=True,
        secure=page.secure_cookies,
    )
    return response


# Catalog ---------------------------------------------------------------------------------


@router.get("/catalog")
async def catalog(
    page: PageDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    category: Annotated[str | None, Query(max_length=80)] = None,
    level: Annotated[str | None, Query(max_length=20)] = None,
    language: Annotated[str | None, Query(max_length=12)] = None,
    price: Annotated[str | None, Query(max_length=10)] = None,
    sort: Annotated[str | None, Query(max_length=20)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
) -> Response:
    filters: dict[str, Any] = {
        "q": q,
        "category": category,
        "level": level,
        "language": language,
        "price": price,
        "sort": sort,
    }
    try:
        results = await page.api.get(
            "courses", params={**filters, "page": page_number, "size": CATALOG_PAGE_SIZE}
        )
        problem = None
    except ApiProblem as error:
        if error.status != 422:
            raise
        results, problem = {"items": [], "total": 0}, error
    suggestions: list[dict[str, Any]] = []
    if page.user is not None and not q and page_number == 1:
        try:
            suggestions = (await page.api.get("me/recommendations", params={"size": 4}))["items"]
        except ApiProblem:
            suggestions = []
    template = "public/_catalog_results.html" if page.htmx else "public/catalog.html"
    # The results with a note on a filter refused (422), not a form refused: 200, which
    # htmx swaps in.
    return page.render(
        template,
        status=200,
        results=results,
        filters=filters,
        page_number=page_number,
        page_size=CATALOG_PAGE_SIZE,
        suggestions=suggestions,
        problem=problem,
    )


# A course's page -------------------------------------------------------------------------


async def _progress(page: PageDep, course_id: uuid.UUID) -> dict[str, Any] | None:
    if page.user is None:
        return None
    try:
        progress: dict[str, Any] = await page.api.get(f"courses/{course_id}/progress")
    except ApiProblem as problem:
        if problem.status in (403, 404):
            return None
        raise
    return progress


async def _reviews(page: PageDep, course_id: uuid.UUID) -> dict[str, Any]:
    reviews: dict[str, Any] = await page.api.get(
        f"courses/{course_id}/reviews", params={"size": 10}
    )
    return reviews


async def _related(page: PageDep, course_id: uuid.UUID) -> list[dict[str, Any]]:
    try:
        related = await page.api.get(f"courses/{course_id}/related", params={"size": 4})
    except ApiProblem:
        return []
    items: list[dict[str, Any]] = related["items"]
    return items


@router.get("/courses/{course_id:uuid}")
async def course_page(page: PageDep, course_id: uuid.UUID) -> Response:
    course = await page.api.get(f"courses/{course_id}")
    # One call after another: a page holds at most one pooled connection at a time.
    progress = await _progress(page, course_id)
    reviews = await _reviews(page, course_id)
    related = await _related(page, course_id)
    return page.render(
        "public/course.html", course=course, progress=progress, reviews=reviews, related=related
    )


@router.post("/courses/{course_id:uuid}/enroll")
async def enroll(page: SignedInForm, course_id: uuid.UUID) -> Response:
    try:
        await page.api.post(f"courses/{course_id}/enrollments")
    except ApiProblem as problem:
        if problem.status == 409:  # already enrolled
            return page.redirect(f"/learn/courses/{course_id}")
        course = await page.api.get(f"courses/{course_id}")
        return page.render(
            "public/course.html",
            status=problem.status,
            course=course,
            progress=None,
            reviews=await _reviews(page, course_id),
            related=[],
            problem=problem,
        )
    return page.redirect(f"/learn/courses/{course_id}")
