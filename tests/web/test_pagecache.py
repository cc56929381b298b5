"""The page cache of the public catalog pages (`web.pagecache`), against the running
server: a cached page carries each browser's own CSRF token (and a first visit gets its
cookie), a published or changed course is on `/` and `/catalog` at once, a signed-in
browser is never answered from it, and the languages do not mix."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from markupsafe import escape

from tests.web.conftest import WebServer

_CSRF_IN_PAGE = re.compile(r'data-csrf="([A-Za-z0-9_-]{43})"')
_COURSE_LINK = re.compile(r'href="/courses/([0-9a-f-]{36})"')


def _visitor(web: WebServer, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=web.url, timeout=30, headers=headers)


def _tokens_in(html: str) -> set[str]:
    return set(_CSRF_IN_PAGE.findall(html))


def _cached(path: str, client: httpx.Client) -> httpx.Response:
    """GET `path` until the page cache answers it (the first may render it)."""
    for _ in range(3):
        answer = client.get(path)
        assert answer.status_code == 200, answer.text[:300]
        if answer.headers.get("x-cache") == "hit":
            return answer
    raise AssertionError(f"{path} was never answered from the page cache")


def test_each_visitor_gets_their_own_csrf_token_from_a_cached_page(web: WebServer) -> None:
    path = f"/catalog?q=python+{uuid.uuid4().hex[:8]}"  # a page nobody cached yet
    with _visitor(web) as first, _visitor(web) as a, _visitor(web) as b:
        rendered = first.get(path)
        assert rendered.headers["x-cache"] == "miss"
        first_token = first.cookies["lyceum_csrf"]
        assert _tokens_in(rendered.text) == {first_token}

        for visitor in (a, b):
            answer = _cached(path, visitor)  # a first visit: a new token and its cookie
            token = visitor.cookies["lyceum_csrf"]
            assert "lyceum_csrf=" in answer.headers["set-cookie"]
            assert "httponly" in answer.headers["set-cookie"].lower()
            assert _tokens_in(answer.text) == {token}
            assert f'"X-CSRF-Token": "{token}"' in answer.text  # the htmx header too
            assert answer.headers["content-security-policy"].startswith("default-src 'self'")
            assert answer.headers["cache-control"] == "no-store"
        token_a, token_b = a.cookies["lyceum_csrf"], b.cookies["lyceum_csrf"]
        assert len({first_token, token_a, token_b}) == 3

        again = _cached(path, a)  # a returning browser keeps its token, no new cookie
        assert "set-cookie" not in again.headers
        assert _tokens_in(again.text) == {token_a}
        assert token_b not in again.text and first_token not in again.text

        # The token in a form of the cached page works for that browser only.
        email, password = web.accounts["student"]
        signed_in = a.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": token_a, "next": "/"},
        )
        assert signed_in.status_code == 303
        refused = b.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": token_a, "next": "/"},
        )
        assert refused.status_code == 403


def test_a_forged_csrf_cookie_is_replaced_not_echoed(web: WebServer) -> None:
    path = "/"
    with _visitor(web) as warm:
        warm.get(path)
    with _visitor(web, Cookie='lyceum_csrf="<script>"') as forged:
        answer = _cached(path, forged)
        assert "<script>" not in answer.text.split("</head>", 1)[1].split("<script", 1)[0]
        token = forged.cookies["lyceum_csrf"]
        assert _tokens_in(answer.text) == {token}


def test_a_published_or_changed_course_is_on_the_pages_at_once(web: WebServer) -> None:
    word = f"zq{uuid.uuid4().hex[:10]}"
    search = f"/catalog?q={word}"
    admin = web.api(*web.accounts["admin"])
    owner = web.api(*web.accounts["instructor"])
    with _visitor(web) as visitor:
        assert "course-card" not in _cached(search, visitor).text  # cached: nothing found

        created = owner.post("/courses", json={"title": f"Cached {word}"})
        assert created.status_code == 201, created.text
        course_id = created.json()["id"]
        module = owner.post(f"/courses/{course_id}/modules", json={"title": "One"}).json()
        owner.post(
            f"/courses/{course_id}/modules/{module['id']}/lessons",
            json={"title": "First", "content": "Text."},
        ).raise_for_status()
        owner.post(f"/courses/{course_id}/publish").raise_for_status()
        found = visitor.get(search)
        assert found.headers["x-cache"] == "miss"
        assert f"Cached {word}" in found.text

        owner.patch(f"/courses/{course_id}", json={"title": f"Renamed {word}"}).raise_for_status()
        assert f"Renamed {word}" in visitor.get(search).text

        # The home page: a course it shows, renamed, shows its new title at once.
        home = _cached("/", visitor).text
        shown = _COURSE_LINK.search(home)
        assert shown is not None
        course = admin.get(f"/courses/{shown[1]}").json()
        try:
            admin.patch(
                f"/courses/{shown[1]}", json={"title": f"{course['title']} {word}"}
            ).raise_for_status()
            assert f"{course['title']} {word}" in visitor.get("/").text
        finally:
            admin.patch(f"/courses/{shown[1]}", json={"title": course["title"]})


def test_a_signed_in_browser_never_gets_the_signed_out_page(web: WebServer) -> None:
    with _visitor(web) as visitor:
        _cached("/", visitor)
        _cached("/catalog", visitor)
        email, password = web.accounts["student"]
        _sign_in(visitor, email, password)
        for path in ("/", "/catalog"):
            answer = visitor.get(path)
            assert answer.status_code == 200
            assert answer.headers.get("x-cache") != "hit"
            assert "Sign out" in answer.text
            assert 'href="/login"' not in answer.text
        # The catalog without a search shows the user's own recommendations: never kept.
        for _ in range(3):
            assert "x-cache" not in visitor.get("/catalog").headers
        # A stale or forged session cookie is not signed out from the cache either: the
        # page checks it and clears it.
        with _visitor(web, Cookie="lyceum_session=forged") as stale:
            answer = stale.get("/")
            assert "x-cache" not in answer.headers
            assert "lyceum_session=" in answer.headers["set-cookie"]


# Signed in ------------------------------------------------------------------------------


def _password() -> str:
    return f"cached passphrase {uuid.uuid4().hex[:10]}"


def _new_account(web: WebServer, name: str) -> tuple[str, str, str]:
    """A fresh student registered through the API: (email, password, id)."""
    email = f"cache-{uuid.uuid4().hex[:10]}@web.test"
    password = _password()
    answer = web.api().post(
        "/auth/register", json={"email": email, "password": password, "full_name": name}
    )
    assert answer.status_code == 201, answer.text
    return email, password, str(answer.json()["id"])


def _sign_in(browser: httpx.Client, email: str, password: str) -> None:
    """Through the sign-in form, as a browser does (CSRF cookie and field)."""
    assert browser.get("/login").status_code == 200
    signed_in = browser.post(
        "/login",
        data={
            "email": email,
            "password": password,
            "csrf_token": browser.cookies["lyceum_csrf"],
            "next": "/",
        },
    )
    assert signed_in.status_code == 303, signed_in.text[:300]
    assert browser.cookies.get("lyceum_session")


def _with_cookie(web: WebServer, session: str) -> httpx.Client:
    """A browser that sends the session cookie `session` whatever it is told."""
    return _visitor(web, Cookie=f"lyceum_session={session}")


def _signed_out(answer: httpx.Response) -> None:
    assert answer.status_code == 200
    assert answer.headers.get("x-cache") != "hit"
    assert 'href="/login"' in answer.text and "Sign out" not in answer.text
    assert "lyceum_session=" in answer.headers["set-cookie"]  # cleared


def test_signed_in_users_get_their_own_name_and_token_from_a_cached_page(
    web: WebServer,
) -> None:
    tag = uuid.uuid4().hex[:8]
    names = {"a": f'<b>Ann & "Co" {tag}</b>', "b": f"Bob O'Neil {tag}"}
    search = f"/catalog?q=python+{uuid.uuid4().hex[:8]}"
    with _visitor(web) as a, _visitor(web) as b, _visitor(web) as teacher:
        accounts = {}
        for key, browser in (("a", a), ("b", b)):
            email, password, _ = _new_account(web, names[key])
            _sign_in(browser, email, password)
            accounts[key] = browser
        _sign_in(teacher, *web.accounts["instructor"])
        for path in ("/", search):
            pages = {key: _cached(path, browser) for key, browser in accounts.items()}
            for key, other in (("a", "b"), ("b", "a")):
                html = pages[key].text
                token = accounts[key].cookies["lyceum_csrf"]
                assert _tokens_in(html) == {token}
                assert f'"X-CSRF-Token": "{token}"' in html
                assert accounts[other].cookies["lyceum_csrf"] not in html
                assert f'<a href="/account">{escape(names[key])}</a>' in html
                assert tag not in html.replace(str(escape(names[key])), "")  # no one else's
                assert "Sign out" in html and 'href="/teach"' not in html
                assert "set-cookie" not in pages[key].headers
                assert (
                    pages[key].headers["content-security-policy"].startswith("default-src 'self'")
                )
                assert pages[key].headers["cache-control"] == "no-store"
            assert "<b>Ann" not in pages["a"].text  # the markup is text
            # An instructor's header has the Teach link: another page per role.
            taught = _cached(path, teacher).text
            assert 'href="/teach"' in taught and tag not in taught.split("</header>")[0]


def test_a_first_visit_signed_in_gets_a_csrf_cookie_from_a_cached_page(web: WebServer) -> None:
    email, password, _ = _new_account(web, "Cookie Less")
    with _visitor(web) as browser:
        _sign_in(browser, email, password)
        _cached("/", browser)
        session = browser.cookies["lyceum_session"]
    with _with_cookie(web, session) as bare:  # the session cookie but no CSRF cookie
        answer = _cached("/", bare)
        token = bare.cookies["lyceum_csrf"]
        assert "lyceum_csrf=" in answer.headers["set-cookie"]
        assert _tokens_in(answer.text) == {token}
        assert "Cookie Less" in answer.text


def _cached_then(web: WebServer, change: str) -> tuple[httpx.Response, str]:
    """A fresh student signed in through the form and served `/` from the page cache;
    `change` done to the account (through the API: another session, or an admin); then
    `/` once more with the same session cookie. Answers that page, and the account's
    name."""
    name = f"Learner {uuid.uuid4().hex[:8]}"
    email, password, user_id = _new_account(web, name)
    admin = web.api(*web.accounts["admin"])
    with _visitor(web) as browser:
        _sign_in(browser, email, password)
        assert name in _cached("/", browser).text
        assert browser.get("/").headers["x-cache"] == "hit"
        session = browser.cookies["lyceum_session"]
        elsewhere = web.api(email, password)
        if change == "sign out":
            assert browser.post(
                "/logout", data={"csrf_token": browser.cookies["lyceum_csrf"]}
            ).status_code in (200, 303)
        elif change == "sign out everywhere":
            for login in elsewhere.get("/auth/sessions").json()["items"]:
                if not login["current"]:
                    elsewhere.delete(f"/auth/sessions/{login['id']}").raise_for_status()
        elif change == "password change":
            elsewhere.post(
                "/auth/password/change",
                json={"current_password": password, "new_password": _password()},
            ).raise_for_status()
        elif change == "deactivation":
            admin.patch(f"/users/{user_id}", json={"is_active": False}).raise_for_status()
        elif change == "account deletion":
            # Deleting an account signs it out everywhere (here: from the API).
            deleted = elsewhere.request("DELETE", "/users/me", json={"password": password})
            assert deleted.status_code == 204, deleted.text
        elif change == "role change":
            admin.patch(f"/users/{user_id}", json={"role": "instructor"}).raise_for_status()
        elif change == "rename":
            elsewhere.patch("/users/me", json={"full_name": f"Renamed {name}"}).raise_for_status()
        else:
            raise AssertionError(change)
    with _with_cookie(web, session) as again:
        return again.get("/"), name


@pytest.mark.parametrize(
    "change",
    ["sign out", "sign out everywhere", "password change", "deactivation", "account deletion"],
)
def test_signing_out_ends_the_cached_page_at_once(web: WebServer, change: str) -> None:
    answer, name = _cached_then(web, change)
    _signed_out(answer)
    assert name not in answer.text


def test_a_role_change_or_a_new_name_shows_at_once(web: WebServer) -> None:
    promoted, name = _cached_then(web, "role change")
    assert promoted.headers.get("x-cache") != "hit"
    assert 'href="/teach"' in promoted.text and name in promoted.text
    renamed, name = _cached_then(web, "rename")
    assert renamed.headers.get("x-cache") != "hit"
    assert f"Renamed {name}" in renamed.text


def test_urls_with_parameters_a_page_does_not_read_are_not_kept(web: WebServer) -> None:
    with _visitor(web) as visitor:
        for _ in range(3):
            answer = visitor.get(f"/catalog?q=python&x={uuid.uuid4().hex[:8]}")
            assert answer.status_code == 200
            assert "x-cache" not in answer.headers
        assert _cached("/catalog?q=python&page=1", visitor).status_code == 200


def test_languages_do_not_mix(web: WebServer) -> None:
    path = f"/catalog?q={uuid.uuid4().hex[:8]}"
    with (
        _visitor(web, **{"Accept-Language": "vi"}) as vietnamese,
        _visitor(web, **{"Accept-Language": "en-GB,en;q=0.9"}) as english,
        _visitor(web) as chose_vietnamese,
    ):
        chose_vietnamese.cookies.set("lyceum_lang", "vi")
        vi = _cached(path, vietnamese)
        assert '<html lang="vi"' in vi.text
        en = _cached(path, english)
        assert '<html lang="en"' in en.text
        assert en.text != vi.text.replace('lang="vi"', 'lang="en"')
        by_cookie = _cached(path, chose_vietnamese)
        assert '<html lang="vi"' in by_cookie.text
        with _visitor(web, **{"Accept-Language": "vi"}) as htmx:
            fragment = htmx.get(path, headers={"HX-Request": "true"})
            assert "<html" not in fragment.text  # the htmx fragment, not the cached page
