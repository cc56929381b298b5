"""Accounts: sign up, email verification, forgot and reset password; the account area
(profile, avatar, password, MFA, sessions, notification preferences, deleting the
account); orders, receipts and buying a priced course.

Every page shows what the API answers its user, and every form makes the API call a
mobile app would make: nothing here reads the database or decides who may see what."""

from __future__ import annotations

import uuid
import zoneinfo
from functools import cache
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, File, Form, Query, UploadFile
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from lyceum.web.api import ApiProblem, _problem
from lyceum.web.context import FormPage, Page, PageDep, SignedInForm, SignedInPage, is_local_path
from lyceum.web.i18n import LOCALE_NAMES
from lyceum.web.signin import end_session, safe_next, start_session

router = APIRouter(include_in_schema=False)

# The notification categories and channels the API knows, in the order shown.
CATEGORIES = (
    "security",
    "payments",
    "course_activity",
    "grades",
    "announcements",
    "reminders",
    "weekly_digest",
)
CHANNELS = ("in_app", "email", "sms", "push")
# Mail of these categories cannot be turned off (the API refuses `false`).
LOCKED_EMAIL = frozenset({"security", "payments"})
MAX_AVATAR_BYTES = 8 * 1024 * 1024
ORDERS_PAGE_SIZE = 20


@cache
def time_zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


# Sign up -----------------------------------------------------------------------------


@router.get("/signup")
async def signup_form(page: PageDep, next: str | None = None) -> Response:
    if page.user is not None:
        return page.redirect("/account")
    return page.render(
        "account/signup.html", full_name="", email="", next=safe_next(next), problem=None
    )


@router.post("/signup")
async def signup(
    page: FormPage,
    full_name: Annotated[str, Form(max_length=400)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/account",
) -> Response:
    try:
        await page.api.post(
            "auth/register",
            json={"full_name": full_name, "email": email, "password": password},
        )
        # The new account signs in with the same credentials, as an app would.
        answer = await page.api.post("auth/login", json={"email": email, "password": password})
    except ApiProblem as problem:
        return page.render(
            "account/signup.html",
            full_name=full_name,
            email=email,
            next=safe_next(next),
            problem=problem,
        )
    target = safe_next(next)
    return start_session(page, answer, "/account?welcome=1" if target == "/learn" else target)


# Email verification --------------------------------------------------------------------


@router.get("/verify-email")
async def verify_email_page(
    page: PageDep, token: Annotated[str, Query(max_length=600)] = ""
) -> Response:
    return page.render("account/verify_email.html", token=token, problem=None, verified=False)


@router.post("/verify-email")
async def verify_email(
    page: FormPage, token: Annotated[str, Form(max_length=600)] = ""
) -> Response:
    try:
        await page.api.post("auth/verify-email", json={"token": token})
    except ApiProblem as problem:
        return page.render(
            "account/verify_email.html",
            token=token,
            problem=problem,
            verified=False,
        )
    return page.render("account/verify_email.html", token="", problem=None, verified=True)


@router.post("/account/verify-email/resend")
async def resend_verification(page: SignedInForm) -> Response:
    try:
        await page.api.post("auth/verify-email/resend")
    except ApiProblem as problem:
        return await _account(page, problem=problem)
    return await _account(page, notice=page.gettext("A new confirmation link is on its way."))


# Forgot and reset password ---------------------------------------------------------------


@router.get("/forgot-password")
async def forgot_password_form(page: PageDep) -> Response:
    return page.render("account/forgot_password.html", email="", problem=None, sent=False)


@router.post("/forgot-password")
async def forgot_password(
    page: FormPage, email: Annotated[str, Form(max_length=320)] = ""
) -> Response:
    try:
        await page.api.post("auth/password/forgot", json={"email": email})
    except ApiProblem as problem:
        return page.render(
            "account/forgot_password.html",
            email=email,
            problem=problem,
            sent=False,
        )
    return page.render("account/forgot_password.html", email=email, problem=None, sent=True)


@router.get("/reset-password")
async def reset_password_form(
    page: PageDep, token: Annotated[str, Query(max_length=600)] = ""
) -> Response:
    return page.render("account/reset_password.html", token=token, problem=None, done=False)


@router.post("/reset-password")
async def reset_password(
    page: FormPage,
    token: Annotated[str, Form(max_length=600)] = "",
    new_password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    try:
        await page.api.post(
            "auth/password/reset", json={"token": token, "new_password": new_password}
        )
    except ApiProblem as problem:
        return page.render(
            "account/reset_password.html",
            token=token,
            problem=problem,
            done=False,
        )
    if page.user is not None:  # the reset signed every session out, this one too
        end_session(page)
    return page.render("account/reset_password.html", token="", problem=None, done=True)


# The account page: profile and avatar ------------------------------------------------------


async def _account(
    page: Page,
    *,
    problem: ApiProblem | None = None,
    notice: str | None = None,
    status: int | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    me = await page.api.get("users/me")
    return page.render(
        "account/profile.html",
        status=status,
        me=me,
        form=form or me,
        problem=problem,
        notice=notice,
        locales=LOCALE_NAMES,
        time_zones=time_zones(),
        tab="profile",
    )


@router.get("/account")
async def account(page: SignedInPage, welcome: bool = False, saved: bool = False) -> Response:
    notice = None
    if welcome:
        notice = page.gettext(
            "Welcome to Lyceum! We mailed you a link to confirm your email address."
        )
    elif saved:
        notice = page.gettext("Your changes are saved.")
    return await _account(page, notice=notice)


@router.post("/account/profile")
async def update_profile(
    page: SignedInForm,
    full_name: Annotated[str, Form(max_length=400)] = "",
    bio: Annotated[str, Form(max_length=4000)] = "",
    locale: Annotated[str, Form(max_length=35)] = "en",
    timezone: Annotated[str, Form(max_length=64)] = "UTC",
) -> Response:
    changes = {"full_name": full_name, "bio": bio, "locale": locale, "timezone": timezone}
    try:
        await page.api.patch("users/me", json=changes)
    except ApiProblem as problem:
        return await _account(page, problem=problem, form=changes)
    return page.redirect("/account?saved=1")


@router.post("/account/avatar")
async def upload_avatar(
    page: SignedInForm, avatar: Annotated[UploadFile | None, File()] = None
) -> Response:
    data = await avatar.read(MAX_AVATAR_BYTES + 1) if avatar is not None else b""
    if not data:
        problem = ApiProblem(
            422, page.gettext("No image"), page.gettext("Choose an image to upload."), "invalid"
        )
        return await _account(page, problem=problem, status=422)
    name = (avatar.filename if avatar is not None else None) or "avatar"
    kind = (avatar.content_type if avatar is not None else None) or "application/octet-stream"
    try:
        await page.api.put("users/me/avatar", files={"file": (name, data, kind)})
    except ApiProblem as problem:
        return await _account(page, problem=problem)
    return page.redirect("/account?saved=1")


@router.get("/avatars/{user_id:uuid}")
async def avatar_image(page: SignedInPage, user_id: uuid.UUID) -> Response:
    """A user's avatar, fetched from the API with this browser's sign-in (the API's
    image needs a bearer token that a plain <img> cannot send)."""
    answer = await page.api.call("GET", f"users/{user_id}/avatar")
    if answer.status >= 400:
        return page.finish(Response(status_code=answer.status))
    return page.finish(
        Response(
            answer.body,
            media_type=answer.headers.get("content-type", "image/png"),
            headers={"Cache-Control": "private, max-age=300"},
        )
    )


# Security: password, MFA, sessions ---------------------------------------------------------


async def _security(
    page: Page,
    *,
    problem: ApiProblem | None = None,
    notice: str | None = None,
    status: int | None = None,
    section: str | None = None,
) -> Response:
    me = await page.api.get("users/me")
    sessions = await page.api.get("auth/sessions")
    return page.render(
        "account/security.html",
        status=status,
        me=me,
        sessions=sessions["items"],
        problem=problem,
        section=section,
        notice=notice,
        tab="security",
    )


@router.get("/account/security")
async def security(page: SignedInPage, done: str | None = None) -> Response:
    notices = {
        "password": page.gettext("Your password is changed. Your other sessions are signed out."),
        "mfa-off": page.gettext("Two-factor authentication is off."),
        "revoked": page.gettext("That session is signed out."),
        "others": page.gettext("Every other session is signed out."),
    }
    return await _security(page, notice=notices.get(done or ""))


@router.post("/account/password")
async def change_password(
    page: SignedInForm,
    current_password: Annotated[str, Form(max_length=1024)] = "",
    new_password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    try:
        await page.api.post(
            "auth/password/change",
            json={"current_password": current_password, "new_password": new_password},
        )
    except ApiProblem as problem:
        return await _security(page, problem=problem, section="password")
    return page.redirect("/account/security?done=password")


@router.post("/account/mfa/setup")
async def mfa_setup(page: SignedInForm) -> Response:
    setup = await page.api.post("auth/mfa/setup")
    return page.render("account/mfa_setup.html", setup=setup, problem=None, tab="security")


@router.post("/account/mfa/enable")
async def mfa_enable(
    page: SignedInForm,
    code: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    secret: Annotated[str, Form(max_length=200)] = "",
    otpauth_uri: Annotated[str, Form(max_length=2000)] = "",
    qr_png_base64: Annotated[str, Form(max_length=200_000)] = "",
) -> Response:
    try:
        answer = await page.api.post(
            "auth/mfa/enable", json={"code": code.strip(), "password": password}
        )
    except ApiProblem as problem:
        # The secret set up stays pending at the API: show the same one again.
        setup = {"secret": secret, "otpauth_uri": otpauth_uri, "qr_png_base64": qr_png_base64}
        return page.render(
            "account/mfa_setup.html",
            setup=setup,
            problem=problem,
            tab="security",
        )
    return page.render("account/mfa_codes.html", codes=answer["recovery_codes"], tab="security")


@router.post("/account/mfa/disable")
async def mfa_disable(
    page: SignedInForm,
    password: Annotated[str, Form(max_length=1024)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    try:
        await page.api.post("auth/mfa/disable", json={"password": password, "code": code.strip()})
    except ApiProblem as problem:
        return await _security(page, problem=problem, section="mfa")
    return page.redirect("/account/security?done=mfa-off")


@router.post("/account/sessions/{session_id:uuid}/revoke")
async def revoke_session(page: SignedInForm, session_id: uuid.UUID) -> Response:
    current = page.claims.session_id if page.claims is not None else None
    await page.api.delete(f"auth/sessions/{session_id}")
    if session_id == current:
        end_session(page)
        return page.redirect("/login")
    return page.redirect("/account/security?done=revoked")


@router.post("/account/sessions/revoke-others")
async def revoke_other_sessions(page: SignedInForm) -> Response:
    """Sign out everywhere else: the API has no single call for it, so each of the
    other logins is revoked (the browser and API sessions are the same ones)."""
    sessions = await page.api.get("auth/sessions")
    for login in sessions["items"]:
        if login["current"]:
            continue
        try:
            await page.api.delete(f"auth/sessions/{login['id']}")
        except ApiProblem as problem:
            if problem.status != 404:  # already ended meanwhile
                raise
    return page.redirect("/account/security?done=others")


# Notification preferences ------------------------------------------------------------------


async def _notifications(
    page: Page,
    *,
    problem: ApiProblem | None = None,
    notice: str | None = None,
    status: int | None = None,
) -> Response:
    preferences = await page.api.get("me/notification-preferences")
    return page.render(
        "account/notifications.html",
        status=status,
        preferences=preferences,
        categories=[c for c in CATEGORIES if c in preferences["channels"]],
        channels=CHANNELS,
        locked=LOCKED_EMAIL,
        time_zones=time_zones(),
        problem=problem,
        notice=notice,
        tab="notifications",
    )


@router.get("/account/notifications")
async def notification_preferences(page: SignedInPage, saved: bool = False) -> Response:
    notice = page.gettext("Your notification settings are saved.") if saved else None
    return await _notifications(page, notice=notice)


def _switches(form: FormData) -> dict[str, dict[str, bool]]:
    chosen = {str(value) for value in form.getlist("on")}
    switches: dict[str, dict[str, bool]] = {}
    for category in CATEGORIES:
        for channel in CHANNELS:
            if category in LOCKED_EMAIL and channel == "email":
                continue  # always on
            switches.setdefault(category, {})[channel] = f"{category}.{channel}" in chosen
    return switches


@router.post("/account/notifications")
async def save_notification_preferences(page: SignedInForm) -> Response:
    form = await page.request.form()
    quiet = form.get("quiet") == "on"
    start, end = str(form.get("quiet_start") or ""), str(form.get("quiet_end") or "")
    body: dict[str, Any] = {
        "channels": _switches(form),
        "quiet_hours": {"start": start, "end": end} if quiet else None,
    }
    zone = str(form.get("time_zone") or "")
    if zone:
        body["time_zone"] = zone
    try:
        await page.api.patch("me/notification-preferences", json=body)
    except ApiProblem as problem:
        return await _notifications(page, problem=problem)
    return page.redirect("/account/notifications?saved=1")


# Deleting the account ----------------------------------------------------------------------


@router.get("/account/delete")
async def delete_account_form(page: SignedInPage) -> Response:
    me = await page.api.get("users/me")
    return page.render("account/delete.html", me=me, problem=None, tab="profile")


@router.post("/account/delete")
async def delete_account(
    page: SignedInForm,
    password: Annotated[str, Form(max_length=1024)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    body = {"password": password, "code": code.strip() or None}
    try:
        await page.api.delete("users/me", json=body)
    except ApiProblem as problem:
        me = await page.api.get("users/me")
        return page.render(
            "account/delete.html",
            me=me,
            problem=problem,
            tab="profile",
        )
    end_session(page)
    return page.redirect("/?deleted=1")


# Orders, receipts and buying -----------------------------------------------------------------


@router.get("/account/orders")
async def orders(
    page: SignedInPage,
    page_number: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
    paid: uuid.UUID | None = None,
) -> Response:
    found = await page.api.get("me/orders", params={"page": page_number, "size": ORDERS_PAGE_SIZE})
    just_paid = None
    if paid is not None:
        just_paid = next((o for o in found["items"] if o["id"] == str(paid)), None)
    return page.render(
        "account/orders.html",
        orders=found,
        page_number=page_number,
        page_size=ORDERS_PAGE_SIZE,
        just_paid=just_paid,
        tab="orders",
    )


@router.get("/account/orders/{order_id:uuid}")
async def order_page(page: SignedInPage, order_id: uuid.UUID) -> Response:
    order = await page.api.get(f"me/orders/{order_id}")
    return page.render("account/order.html", order=order, tab="orders")


@router.get("/account/orders/{order_id:uuid}/receipt")
async def receipt(page: SignedInPage, order_id: uuid.UUID) -> Response:
    answer = await page.api.call("GET", f"me/orders/{order_id}/receipt")
    if answer.status >= 400:
        raise _problem(answer.status, answer.headers, answer.body)
    headers = {"Cache-Control": "private, no-store"}
    disposition = answer.headers.get("content-disposition")
    headers["Content-Disposition"] = disposition or f'attachment; filename="receipt-{order_id}.pdf"'
    return page.finish(
        Response(
            answer.body,
            media_type=answer.headers.get("content-type", "application/pdf"),
            headers=headers,
        )
    )


@router.post("/courses/{course_id:uuid}/buy")
async def buy(
    page: SignedInForm,
    course_id: uuid.UUID,
    key: Annotated[str, Form(max_length=255)] = "",
    coupon_code: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """A checkout for a priced course (the API's Idempotency-Key is the one the form was
    rendered with: a second click answers the same order), then off to pay."""
    idempotency_key = key if key and key.isascii() and key.isprintable() and " " not in key else ""
    if not idempotency_key:
        idempotency_key = uuid.uuid4().hex
    body: dict[str, Any] = {}
    if coupon_code.strip():
        body["coupon_code"] = coupon_code.strip()
    try:
        order = await page.api.post(
            f"courses/{course_id}/checkout",
            json=body,
            headers={"Idempotency-Key": idempotency_key},
        )
    except ApiProblem as problem:
        if problem.slug == "already-enrolled":
            return page.redirect(f"/learn/courses/{course_id}")
        if problem.status in (401, 404):
            raise
        return page.render(
            "account/buy_problem.html",
            course_id=course_id,
            problem=problem,
            tab="orders",
        )
    if order["status"] == "paid":  # a coupon made it free: enrolled already
        return page.redirect(f"/account/orders?paid={order['id']}")
    url = str(order.get("checkout_url") or "")
    # The provider's page: a path of this site (the sandbox) or an https address (a real
    # provider; plain http only outside production).
    external = url.startswith("https://") or (
        url.startswith("http://") and not page.settings.is_production
    )
    if not (external or is_local_path(url)) or any(c in url for c in "\\\t\r\n "):
        return page.redirect(f"/account/orders/{order['id']}")
    if external and urlsplit(url).netloc != page.request.url.netloc:
        # The page's CSP allows forms to post to this site only (`form-action 'self'`),
        # and browsers apply it to the redirects after a form too: a provider on another
        # origin is reached by a page that sends the browser there instead.
        return page.render("account/to_checkout.html", url=url, order=order)
    return page.finish(RedirectResponse(url, status_code=303))
