"""The pages of the built-in sandbox provider (outside /api/v1 and the OpenAPI document):
its hosted checkout with Pay and Decline, and the small pages a buyer lands on after
checking out when CHECKOUT_SUCCESS_URL / CHECKOUT_CANCEL_URL are not set.

Pay or Decline settles the sandbox's checkout and hands the signed webhook it makes to
the same verification and application a provider's delivery goes through
(`service.receive_webhook`), in the same transaction, then sends the browser on (303).
The form carries a token bound to the checkout; the pages have no script and escape
every value (Jinja autoescape)."""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Annotated, Literal

from fastapi import Form, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from lyceum.identity.permissions import RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.kit.errors import Forbidden, NotFound
from lyceum.kit.routing import Router
from lyceum.kit.security import constant_time_equal
from lyceum.payments import money, registry
from lyceum.payments.providers.sandbox import PAGE_PATH, SandboxProvider, form_token
from lyceum.payments.service import receive_webhook

pages = Router(include_in_schema=False)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' https:; "
    "base-uri 'none'; frame-ancestors 'none'"
)
CheckoutId = Annotated[str, Path(pattern=r"^sbx_cs_[0-9a-f]{24}$")]


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("lyceum", "templates/payments"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
    )


def _html(template: str, status_code: int = 200, **context: object) -> HTMLResponse:
    body = _templates().get_template(template).render(**context)
    return HTMLResponse(
        body,
        status_code=status_code,
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store"},
    )


def _sandbox(runtime: RuntimeDep, session: Session) -> SandboxProvider:
    provider = registry.providers(runtime.settings, session=session).get("sandbox")
    if not isinstance(provider, SandboxProvider):
        raise NotFound("The sandbox payment provider is not enabled here.")
    return provider


@pages.get(PAGE_PATH + "/{checkout_id}", response_class=HTMLResponse)
async def sandbox_checkout_page(
    checkout_id: CheckoutId, runtime: RuntimeDep, session: Session, clock: ClockDep
) -> HTMLResponse:
    checkout = await _sandbox(runtime, session).checkout(checkout_id)
    if checkout is None:
        raise NotFound("No such sandbox checkout.")
    is_open = checkout.status == "open" and checkout.expires_at > clock.now()
    return _html(
        "sandbox_checkout.html",
        title="Pay for your course",
        description=checkout.description,
        amount=money.format_amount(checkout.amount, checkout.currency),
        open=is_open,
        status=checkout.status if checkout.status != "open" else "expired",
        action=f"{PAGE_PATH}/{checkout.id}",
        token=form_token(runtime.settings, checkout.id),
    )


@pages.post(PAGE_PATH + "/{checkout_id}")
async def settle_sandbox_checkout(
    checkout_id: CheckoutId,
    token: Annotated[str, Form(max_length=200)],
    action: Annotated[Literal["pay", "decline"], Form()],
    runtime: RuntimeDep,
    session: Session,
    clock: ClockDep,
) -> RedirectResponse:
    sandbox = _sandbox(runtime, session)
    checkout = await sandbox.checkout(checkout_id, for_update=True)
    if checkout is None:
        raise NotFound("No such sandbox checkout.")
    if not constant_time_equal(token, form_token(runtime.settings, checkout.id)):
        raise Forbidden("This form was not served for this checkout.", slug="csrf-token")
    signed = await sandbox.settle(checkout, pay=action == "pay", now=clock.now())
    if signed is not None:
        body, headers = signed
        await receive_webhook(
            session,
            sandbox,
            body,
            headers,
            {},
            now=clock.now(),
            refund_ends_access=runtime.settings.refund_ends_access,
        )
    target = checkout.success_url if checkout.status == "paid" else checkout.cancel_url
    return RedirectResponse(target, status_code=303)


@pages.get("/pay/done", response_class=HTMLResponse)
async def payment_done_page(
    order: Annotated[uuid.UUID | None, Query()] = None,
) -> HTMLResponse:
    return _html(
        "result.html",
        title="Thank you",
        message="Your payment was received: you are enrolled as soon as the provider "
        "confirms it, usually at once.",
        order_id=str(order) if order else "",
    )


@pages.get("/pay/canceled", response_class=HTMLResponse)
async def payment_canceled_page(
    order: Annotated[uuid.UUID | None, Query()] = None,
) -> HTMLResponse:
    return _html(
        "result.html",
        title="No payment made",
        message="The checkout ended without a payment. You can start a new one at any time.",
        order_id=str(order) if order else "",
    )
