"""The learner in a real browser: a new learner signs up (through the API), verifies by
the outbox mail, enrolls, reads a lesson, asks the tutor (a streamed answer with a
citation link that lands on the lesson's section), takes a quiz, submits an essay,
completes the course and downloads the certificate; and another student who changes
an id in a URL gets a refusal, not the data."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import WebServer, audit, shot, sign_in

LESSON_ONE = """Python repeats work with loops.

## Loops with for

A for loop repeats its block once for every item of a sequence, such as a list or a
range of numbers. The loop variable takes each item in turn, so the block can use it.

## Loops with while

A while loop repeats its block as long as its condition stays true. Forgetting to change
the condition makes the loop run forever.
"""

LESSON_TWO = """Functions give a name to a piece of work.

## Defining a function

The def keyword defines a function with a name, its parameters and a body. Calling the
function runs the body with the arguments given.
"""


@dataclass
class Course:
    id: str
    title: str
    lessons: list[str]
    quiz_id: str
    assignment_id: str


@dataclass
class Learner:
    email: str
    password: str
    api: httpx.Client


def _ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture(scope="module")
def course(web: WebServer) -> Course:
    """A published free course of the demo instructor: two lessons with headings, an
    auto-graded required quiz, and an essay assignment with a rubric."""
    teacher = web.api(*web.accounts["instructor"])
    title = f"Loops and functions {uuid.uuid4().hex[:8]}"
    created = _ok(
        teacher.post(
            "/courses",
            json={"title": title, "description": "Python loops and functions, in short."},
        )
    )
    course_id = created["id"]
    module = _ok(teacher.post(f"/courses/{course_id}/modules", json={"title": "Basics"}))
    lessons = [
        _ok(
            teacher.post(
                f"/courses/{course_id}/modules/{module['id']}/lessons",
                json={"title": name, "content": body, "estimated_minutes": 5},
            )
        )["id"]
        for name, body in (("Loops", LESSON_ONE), ("Functions", LESSON_TWO))
    ]
    single = _ok(
        teacher.post(
            f"/courses/{course_id}/questions",
            json={
                "kind": "single_choice",
                "prompt": "Which loop repeats once for every item of a list?",
                "options": [{"id": "a", "text": "for"}, {"id": "b", "text": "while"}],
                "correct": "a",
                "explanation": "A for loop walks a sequence.",
            },
        )
    )
    true_false = _ok(
        teacher.post(
            f"/courses/{course_id}/questions",
            json={
                "kind": "true_false",
                "prompt": "The def keyword defines a function.",
                "correct": True,
            },
        )
    )
    quiz = _ok(
        teacher.post(
            f"/courses/{course_id}/quizzes",
            json={
                "title": "Loops check",
                "published": True,
                "required": True,
                "time_limit_seconds": 600,
                "review_policy": "answers_after_submit",
                "sections": [{"question_id": single["id"]}, {"question_id": true_false["id"]}],
            },
        )
    )
    assignment = _ok(
        teacher.post(
            f"/courses/{course_id}/assignments",
            json={
                "title": "Explain a loop",
                "prompt": "Explain in your own words when you would use a for loop.",
                "points": 10,
                "published": True,
                "rubric": {
                    "criteria": [
                        {
                            "id": "content",
                            "title": "Content",
                            "description": "Explains the loop correctly.",
                            "key_terms": ["sequence", "item"],
                            "levels": [
                                {"title": "Missing", "points": 0},
                                {"title": "Complete", "points": 6},
                            ],
                        },
                        {
                            "id": "clarity",
                            "title": "Clarity",
                            "levels": [
                                {"title": "Unclear", "points": 0},
                                {"title": "Clear", "points": 4},
                            ],
                        },
                    ]
                },
            },
        )
    )
    _ok(teacher.post(f"/courses/{course_id}/publish"), 200)
    return Course(course_id, title, lessons, quiz["id"], assignment["id"])


def new_learner(web: WebServer) -> Learner:
    """A new account, verified with the token of the mailed link."""
    email = f"learner-{uuid.uuid4().hex[:10]}@web.test"
    password = "a long learner passphrase"
    anonymous = web.api()
    _ok(
        anonymous.post(
            "/auth/register",
            json={"email": email, "password": password, "full_name": "Lan Nguyễn"},
        )
    )
    link = web.link_in_mail(email, "Confirm your email", "/verify-email")
    token = re.search(r"token=([^&\s]+)", link)
    assert token, link
    _ok(anonymous.post("/auth/verify-email", json={"token": token.group(1)}), 200)
    return Learner(email, password, web.api(email, password))


def wait_for_indexing(api: httpx.Client, course_id: str, timeout: float = 600) -> None:
    """The worker indexes the demo catalog's lessons first (minutes on a busy machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = api.get(f"/courses/{course_id}/indexing")
        if answer.status_code == 200 and answer.json()["complete"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"the course's material was not indexed in {timeout} s")


def test_the_learner_journey(context: Any, web: WebServer, course: Course) -> None:
    learner = new_learner(web)
    page = context(accept_downloads=True).new_page()
    sign_in(page, learner.email, learner.password)

    # Enroll from the course page: the learner's course home opens.
    page.goto(f"/courses/{course.id}")
    page.get_by_role("button", name="Enroll for free").click()
    page.wait_for_url(f"**/learn/courses/{course.id}")
    page.get_by_role("heading", name=course.title).wait_for()
    expect(page.get_by_role("link", name="Course chat")).to_have_attribute(
        "href", f"/live/courses/{course.id}/chat"
    )
    audit(page)
    shot(page, "learn-course")

    page.goto("/learn")
    expect(page.get_by_role("link", name=course.title)).to_be_visible()
    expect(page.get_by_role("heading", name="Continue where you stopped")).to_be_visible()
    audit(page)
    shot(page, "learn-home")

    # Read the first lesson: its headings carry the anchors citations use.
    page.goto(f"/learn/courses/{course.id}")
    page.get_by_role("link", name="Start").click()
    page.wait_for_url(f"**/learn/lessons/{course.lessons[0]}")
    expect(page.locator("h2#s-loops-with-for")).to_be_visible()

    # The tutor answers (offline: from the material), streamed, with a citation.
    wait_for_indexing(learner.api, course.id)
    page.get_by_label("Your question").fill("How does a for loop repeat its block?")
    page.get_by_role("button", name="Ask").click()
    page.get_by_role("status").filter(has_text="Answer complete.").wait_for(timeout=180_000)
    answer = page.locator(".tutor-assistant .tutor-text").last
    expect(answer).to_contain_text(re.compile("for loop", re.IGNORECASE))
    links = page.locator(".tutor-assistant .tutor-cites a")
    hrefs = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
    sections = [h for h in hrefs if h.startswith(f"/learn/lessons/{course.lessons[0]}#s-")]
    assert sections, hrefs  # a citation of the lesson's section, by its heading's anchor
    href = sections[0]
    citation = links.nth(hrefs.index(href))
    audit(page)
    shot(page, "learn-lesson-tutor")
    citation.click()
    page.wait_for_url(re.compile(r"#s-"))
    anchor = href.split("#", 1)[1]
    expect(page.locator(f"[id='{anchor}']")).to_have_count(1)  # the section it names exists

    # A past conversation opens again beside the lesson.
    page.reload()  # the citation only scrolled the page: load the panel's list again
    expect(page.locator(".tutor-past")).to_have_attribute("open", re.compile(r".*"))
    page.locator(".tutor-past a").first.click()
    page.locator(".tutor-log .tutor-user").first.wait_for()
    expect(page.locator(".tutor-log")).to_contain_text(re.compile("for loop", re.IGNORECASE))

    # Mark complete (htmx), then the next lesson.
    page.get_by_role("button", name="Mark complete").click()
    page.get_by_text("Lesson completed").wait_for()
    page.get_by_role("link", name="Next lesson").click()
    page.wait_for_url(f"**/learn/lessons/{course.lessons[1]}")
    audit(page)
    shot(page, "learn-lesson")
    page.get_by_role("button", name="Mark complete").click()
    page.get_by_text("Lesson completed").wait_for()

    # The quiz: the server's timer, answers, the result with the key after submitting.
    page.goto(f"/learn/courses/{course.id}")
    page.get_by_role("link", name="Loops check").click()
    audit(page)
    shot(page, "learn-quiz")
    page.get_by_role("button", name="Start the quiz").click()
    page.wait_for_url(re.compile(r"/learn/attempts/[0-9a-f-]+$"))
    expect(page.locator("#timer-left")).to_be_visible()
    audit(page)
    shot(page, "learn-attempt")
    page.get_by_label("for", exact=True).check()
    page.get_by_label("True", exact=True).check()
    page.get_by_role("button", name="Submit answers").click()
    page.wait_for_url(re.compile(r"/result$"))
    expect(page.locator("main")).to_contain_text("Score: 2 of 2 (100%)")
    expect(page.get_by_text("Correct answer:")).to_have_count(2)
    audit(page)
    shot(page, "learn-result")

    # The essay: the prompt and rubric, then the submission waits for the instructor.
    page.goto(f"/learn/assignments/{course.assignment_id}")
    expect(page.get_by_role("rowheader", name=re.compile("Content"))).to_be_visible()
    page.get_by_label("Your essay", exact=True).fill(
        "I use a for loop when I have a sequence, such as a list, and want to do the "
        "same work for every item in it. The loop variable takes each item in turn."
    )
    page.get_by_role("button", name="Submit", exact=True).click()
    page.get_by_role("heading", name="Your submission").wait_for()
    expect(page.get_by_text("Waiting for your instructor")).to_be_visible()
    audit(page)
    shot(page, "learn-assignment")

    # Every lesson done and the required quiz passed: the course completes and its
    # certificate is made by a job.
    deadline = time.monotonic() + 60
    while True:
        page.goto(f"/learn/courses/{course.id}")
        if page.get_by_role("link", name="Download your certificate (PDF)").count():
            break
        assert time.monotonic() < deadline, "no certificate within 60 s"
        time.sleep(1)
    expect(page.get_by_role("heading", name="Course completed")).to_be_visible()
    audit(page)
    shot(page, "learn-course-completed")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download your certificate (PDF)").click()
    path = download.value.path()
    assert path is not None
    with open(path, "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"

    page.goto("/learn/certificates")
    audit(page)
    shot(page, "learn-certificates")
    public = page.get_by_role("link", name="Public link").first.get_attribute("href")
    assert public and public.startswith("/certificates/LYC-")

    # The public link works for anyone, signed in or not.
    stranger = context().new_page()
    stranger.goto(public)
    expect(stranger.get_by_text("This certificate is genuine")).to_be_visible()
    expect(stranger.get_by_text(course.title)).to_be_visible()
    audit(stranger)
    shot(stranger, "learn-certificate-public")
    assert stranger.goto("/certificates/LYC-AAAA-BBBB-CCCC").status == 404


def test_another_student_cannot_open_someone_elses_work(
    context: Any, web: WebServer, course: Course
) -> None:
    owner = new_learner(web)
    _ok(owner.api.post(f"/courses/{course.id}/enrollments"))
    attempt = _ok(owner.api.post(f"/quizzes/{course.quiz_id}/attempts"))
    conversation = _ok(
        owner.api.post(
            "/tutor/conversations",
            json={"course_id": course.id, "lesson_id": course.lessons[0]},
        )
    )
    _ok(
        owner.api.post(
            f"/assignments/{course.assignment_id}/submissions",
            json={"text": "A for loop repeats its block for every item of a sequence. " * 3},
        )
    )
    page = context().new_page()
    sign_in(page, *web.accounts["student"])  # not enrolled in this course
    for path in (
        f"/learn/attempts/{attempt['id']}",
        f"/learn/attempts/{attempt['id']}/result",
        f"/learn/tutor/conversations/{conversation['id']}",
        f"/learn/lessons/{course.lessons[0]}?conversation={conversation['id']}",
        f"/learn/assignments/{course.assignment_id}",
    ):
        response = page.goto(path)
        assert response is not None
        assert response.status in (403, 404), f"{path}: {response.status}"
        expect(page.locator("main")).not_to_contain_text("for loop repeats")
    audit(page)
    shot(page, "learn-refused")

    # Enrolled in the course too, the other student still sees only their own work.
    other = new_learner(web)
    _ok(other.api.post(f"/courses/{course.id}/enrollments"))
    page = context().new_page()
    sign_in(page, other.email, other.password)
    for path in (
        f"/learn/attempts/{attempt['id']}",
        f"/learn/tutor/conversations/{conversation['id']}",
    ):
        response = page.goto(path)
        assert response is not None
        assert response.status in (403, 404), f"{path}: {response.status}"
    page.goto(f"/learn/assignments/{course.assignment_id}")
    expect(page.get_by_role("heading", name="Submit your essay")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("for loop repeats its block for every item")
    response = page.goto(f"/learn/lessons/{course.lessons[0]}?conversation={conversation['id']}")
    assert response is not None
    assert response.status == 200  # the lesson, with the tutor refusing that conversation
    expect(page.locator(".tutor-log .tutor-msg")).to_have_count(0)
