"""The instructor's pages in a real browser: a course built from nothing (modules,
lessons with a markdown preview, a PDF indexed by the job worker), published,
an essay assignment with a rubric reviewed and released, the gradebook exported; and
the refusals (students, instructors of other courses)."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fpdf import FPDF
from playwright.sync_api import expect

from tests.web.conftest import WebServer, audit, fits, shot, sign_in

# The worker loads its embedding model for its first indexing job: on a busy machine
# that takes minutes.
BULK_WAIT = 420

ESSAY = (
    "Photosynthesis turns light into chemical energy. Chlorophyll in the chloroplast "
    "absorbs light, water is split and oxygen released, and the Calvin cycle fixes carbon "
    "dioxide into sugar. The evidence comes from isotope experiments with heavy oxygen."
)


@pytest.fixture(scope="module")
def worker(web: WebServer) -> None:
    """The job workers (mail, indexing, essay scoring, ...) run beside the web server
    (the `web` fixture starts them): named here for the tests that need them."""
    return


def _pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(
        0,
        8,
        "Photosynthesis notes. Plants capture light with chlorophyll and store its energy "
        "as sugar. The light reactions split water and release oxygen; the Calvin cycle "
        "fixes carbon dioxide. " * 4,
    )
    return bytes(pdf.output())


def _new_user(web: WebServer, prefix: str) -> tuple[str, str, httpx.Client]:
    """A verified account (registered through the API, verified by its mail's token)."""
    address = f"{prefix}-{uuid.uuid4().hex[:8]}@web.test"
    password = "a long passphrase for the web"
    anonymous = web.api()
    answer = anonymous.post(
        "/auth/register",
        json={"email": address, "password": password, "full_name": f"{prefix.title()} Nguyen"},
    )
    assert answer.status_code == 201, answer.text
    link = web.link_in_mail(address, "Confirm your email", "/verify-email")
    token = parse_qs(urlparse(link).query)["token"][0]
    verified = anonymous.post("/auth/verify-email", json={"token": token})
    assert verified.status_code in (200, 204), verified.text
    return address, password, web.api(address, password)


def _instructor(web: WebServer) -> tuple[str, str, httpx.Client]:
    address, password, client = _new_user(web, "teacher")
    me = client.get("/users/me").json()
    admin = web.api(*web.accounts["admin"])
    changed = admin.patch(f"/users/{me['id']}", json={"role": "instructor"})
    assert changed.status_code == 200, changed.text
    return address, password, web.api(address, password)


def test_the_instructor_journey(context: Any, web: WebServer, worker: None, tmp_path: Path) -> None:
    page = context(accept_downloads=True).new_page()
    sign_in(page, *web.accounts["instructor"])

    # My courses: create a draft.
    page.goto("/teach")
    audit(page)
    shot(page, "teach-courses")
    title = f"Photosynthesis {uuid.uuid4().hex[:6]} <b>bold</b>"
    page.get_by_label("Course title").fill(title)
    page.get_by_role("button", name="Create the draft").click()
    page.wait_for_url(re.compile(r"/teach/courses/[0-9a-f-]{36}$"))
    course_id = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Edit {title}")  # as text

    # Publishing an empty course: the API's refusal is shown.
    page.get_by_role("button", name="Publish").click()
    page.get_by_role("alert").wait_for()
    expect(page.get_by_role("alert")).to_contain_text(re.compile("lesson", re.IGNORECASE))

    # Details with a live markdown preview.
    page.get_by_label("Subtitle").fill("Light into sugar")
    page.get_by_label("Description").fill("## What you learn\n\nThe **Calvin cycle**.")
    page.locator("#preview-description strong").wait_for()
    expect(page.locator("#preview-description strong")).to_have_text("Calvin cycle")
    page.get_by_role("button", name="Save details").click()
    page.get_by_role("status").filter(has_text="Saved.").wait_for()

    # A module and a lesson (htmx), reordered with a second module.
    page.get_by_label("New module title").fill("Light reactions")
    page.get_by_role("button", name="Add module").click()
    page.get_by_role("heading", name="Light reactions").wait_for()
    page.get_by_label("New module title").fill("Calvin cycle")
    page.get_by_role("button", name="Add module").click()
    page.get_by_role("heading", name="Calvin cycle").wait_for()
    page.get_by_role("button", name="Move module Calvin cycle up").click()
    page.wait_for_function(
        "() => document.querySelector('.modules h3').textContent === 'Calvin cycle'"
    )
    page.get_by_label("New lesson title").first.fill("Chlorophyll")
    page.get_by_role("button", name="Add lesson").first.click()
    page.get_by_role("link", name="Chlorophyll").wait_for()
    audit(page)
    shot(page, "teach-editor")

    # The lesson editor: markdown with its preview.
    page.get_by_role("link", name="Chlorophyll").click()
    page.wait_for_url(re.compile(r"/teach/lessons/"))
    page.get_by_label("Content").fill("# Chlorophyll\n\nIt absorbs **red and blue** light.")
    page.locator("#preview-content strong").wait_for()
    expect(page.locator("#preview-content h1, #preview-content h2").first).to_be_visible()
    page.get_by_label("Free preview (anyone may read it)").check()
    page.get_by_role("button", name="Save lesson").click()
    page.get_by_role("status").filter(has_text="Saved.").wait_for()
    audit(page)
    shot(page, "teach-lesson")

    # A PDF, indexed by the worker while the page polls.
    page.goto(f"/teach/courses/{course_id}/files")
    page.locator("#f-file").set_input_files(
        {"name": "photosynthesis.pdf", "mimeType": "application/pdf", "buffer": _pdf()}
    )
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r"/files$"))
    row = page.locator("tr", has_text="photosynthesis.pdf")
    row.wait_for()
    try:
        row.get_by_text("Indexed").wait_for(timeout=BULK_WAIT * 1000)
    except Exception:
        print("ROW", row.inner_text())
        api = web.api(*web.accounts["instructor"])
        print("API", api.get(f"/courses/{course_id}/files").text)
        print("LOG", (web.data_dir / "worker-bulk.log").read_text()[-4000:])
        raise
    audit(page)
    shot(page, "teach-files")

    # Publish.
    page.goto(f"/teach/courses/{course_id}")
    page.get_by_role("button", name="Publish").click()
    page.get_by_role("status").filter(has_text="Published.").wait_for()

    # Tutor settings.
    page.get_by_role("link", name="Tutor", exact=True).click()
    page.get_by_label("Instructions for the tutor").fill("Answer in plain words.")
    page.get_by_role("button", name="Save tutor settings").click()
    page.get_by_role("status").filter(has_text="Saved.").wait_for()
    audit(page)
    shot(page, "teach-tutor")

    # Assessments: a question, a quiz drawn from it, an essay assignment with a rubric.
    page.get_by_role("link", name="Assessments").click()
    page.get_by_text("New question").click()
    page.get_by_label("Question", exact=True).fill("Which pigment absorbs light?")
    page.get_by_label("Options (choice questions)").fill("*Chlorophyll\nKeratin\nMelanin")
    page.get_by_role("button", name="Add the question").click()
    page.get_by_role("status").filter(has_text="Question added.").wait_for()
    page.get_by_text("New quiz").click()
    page.get_by_label("Quiz title").fill("Pigments")
    page.get_by_label("Which pigment absorbs light?").check()
    page.get_by_label("Time limit (minutes)").fill("10")
    page.locator("form[action$='/quizzes']").get_by_label("Publish it now").check()
    page.get_by_role("button", name="Create the quiz").click()
    page.get_by_role("status").filter(has_text="Quiz created.").wait_for()
    page.get_by_text("New essay assignment").click()
    page.get_by_label("Assignment title").fill("Explain photosynthesis")
    page.get_by_label("Prompt").fill("Explain how a leaf turns light into sugar.")
    page.get_by_label("Criterion 1", exact=True).fill("Accuracy")
    page.get_by_label("Points for criterion 1").fill("6")
    page.get_by_label("Key terms for criterion 1").fill("chlorophyll, Calvin cycle")
    page.get_by_label("Criterion 2", exact=True).fill("Evidence")
    page.get_by_label("Points for criterion 2").fill("4")
    page.locator("form[action$='/assignments']").get_by_label("Publish it now").check()
    page.get_by_role("button", name="Create the assignment").click()
    page.get_by_role("status").filter(has_text="Assignment created.").wait_for()
    audit(page)
    shot(page, "teach-assessments")

    # Announcements.
    page.get_by_role("link", name="Announcements").click()
    page.get_by_label("Title").fill("Welcome")
    page.get_by_label("Message").fill("Read **Chlorophyll** first.")
    page.locator("#preview-body strong").wait_for()
    page.get_by_role("button", name="Post", exact=True).click()
    page.get_by_role("status").filter(has_text="Announcement posted.").wait_for()
    expect(page.locator(".announcement strong")).to_have_text("Chlorophyll")
    audit(page)
    shot(page, "teach-announcements")

    # A student enrolls and hands in an essay, through the API.
    student_email, _, student = _new_user(web, "learner")
    assert student.post(f"/courses/{course_id}/enrollments").status_code == 201
    assignments = student.get(f"/courses/{course_id}/assignments").json()["items"]
    assignment_id = assignments[0]["id"]
    handed = student.post(f"/assignments/{assignment_id}/submissions", json={"text": ESSAY})
    assert handed.status_code == 201, handed.text

    # The review queue: wait for the scorer's proposal, override a criterion, release.
    page.goto(f"/teach/courses/{course_id}/review")
    deadline = time.monotonic() + BULK_WAIT
    while not page.get_by_text("Needs review").count():
        assert time.monotonic() < deadline, "the essay was never scored"
        time.sleep(1)
        page.reload()
    audit(page)
    shot(page, "teach-review-queue")
    page.get_by_role("link", name="Learner Nguyen").click()
    page.wait_for_url(re.compile(r"/submissions/"))
    page.get_by_label("Points for Accuracy").fill("5.5")
    page.get_by_label("Comment on Accuracy").fill("Name the products of the light reactions.")
    page.get_by_role("button", name="Save the grade").click()
    page.get_by_role("status").filter(has_text="Grade saved.").wait_for()
    expect(page.get_by_label("Points for Accuracy")).to_have_value("5.5")
    audit(page)
    shot(page, "teach-submission")
    page.get_by_role("button", name="Release the grade").click()
    page.get_by_role("status").filter(has_text="Released.").wait_for()
    mine = student.get(f"/assignments/{assignment_id}/submissions/me").json()
    assert mine["grade"] is not None
    accuracy = next(c for c in mine["grade"]["criteria"] if c["criterion_id"] == "c1")
    assert accuracy["points"] == 5.5

    # The gradebook and its CSV.
    page.get_by_role("link", name="Gradebook").click()
    page.get_by_text("Learner Nguyen").wait_for()
    audit(page)
    shot(page, "teach-gradebook")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    saved = tmp_path / "gradebook.csv"
    download_info.value.save_as(saved)
    content = saved.read_text(encoding="utf-8-sig")
    assert student_email in content
    assert "Explain photosynthesis" in content

    # Analytics: charts with their tables.
    page.get_by_role("link", name="Analytics").click()
    page.get_by_role("heading", name="Lesson funnel").wait_for()
    expect(page.locator("svg.chart title").nth(1)).to_be_attached()
    expect(page.locator("svg.chart rect").first).to_be_attached()
    audit(page)
    shot(page, "teach-analytics")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the funnel as CSV").click()
    funnel = tmp_path / "funnel.csv"
    download_info.value.save_as(funnel)
    assert "Chlorophyll" in funnel.read_text(encoding="utf-8-sig")

    # The course is in my list, published.
    page.goto("/teach")
    course_row = page.locator("tr", has_text=title)
    expect(course_row).to_contain_text("Published")


def test_students_are_refused_the_teaching_pages(page: Any, web: WebServer) -> None:
    sign_in(page, *web.accounts["student"])
    for path in ("/teach", f"/teach/courses/{uuid.uuid4()}"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
    audit(page)
    shot(page, "teach-forbidden")


def test_an_instructor_cannot_open_another_instructors_course(
    context: Any, web: WebServer, worker: None
) -> None:
    owner = web.api(*web.accounts["instructor"])
    created = owner.post("/courses", json={"title": f"Owned {uuid.uuid4().hex[:6]}"})
    assert created.status_code == 201, created.text
    course_id = created.json()["id"]
    module = owner.post(f"/courses/{course_id}/modules", json={"title": "One"}).json()
    owner.post(
        f"/courses/{course_id}/modules/{module['id']}/lessons",
        json={"title": "First", "content": "Text."},
    ).raise_for_status()
    owner.post(f"/courses/{course_id}/publish").raise_for_status()

    email_address, password, _ = _instructor(web)
    page = context().new_page()
    sign_in(page, email_address, password)
    page.goto("/teach")
    expect(page.get_by_text("You teach no course yet")).to_be_visible()
    for path in ("", "/review", "/gradebook", "/files", "/analytics", "/announcements"):
        response = page.goto(f"/teach/courses/{course_id}{path}")
        assert response is not None and response.status == 403, path
    response = page.goto(f"/teach/courses/{course_id}/gradebook.csv")
    assert response is not None and response.status == 403


def test_the_editor_on_a_phone_with_a_confirmed_delete(context: Any, web: WebServer) -> None:
    owner = web.api(*web.accounts["instructor"])
    created = owner.post("/courses", json={"title": f"Phone {uuid.uuid4().hex[:6]}"})
    assert created.status_code == 201, created.text
    course_id = created.json()["id"]
    for title in ("Keep me", "Remove me"):
        owner.post(f"/courses/{course_id}/modules", json={"title": title}).raise_for_status()

    page = context(viewport={"width": 375, "height": 800}).new_page()
    sign_in(page, *web.accounts["instructor"])
    page.goto(f"/teach/courses/{course_id}")
    fits(page, 375)
    audit(page)
    shot(page, "teach-editor-phone")

    # A destructive button asks first: dismissed, nothing happens; accepted, it goes.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete module Remove me").click()
    page.wait_for_timeout(500)
    expect(page.get_by_role("heading", name="Remove me")).to_have_count(1)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete module Remove me").click()
    page.get_by_role("heading", name="Remove me").wait_for(state="detached")
    expect(page.get_by_role("heading", name="Keep me")).to_be_visible()
