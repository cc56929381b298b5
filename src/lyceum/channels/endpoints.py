"""Channel routes: the caller's phone (SMS), browser push subscriptions (Web Push) and
mobile devices (FCM). Every route acts on the caller's own objects only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Response, status

from lyceum.channels import schemas
from lyceum.channels.service import ChannelService, phone_out
from lyceum.identity.permissions import CurrentUser, RuntimeDep
from lyceum.kit.clock import ClockDep
from lyceum.kit.db import Session
from lyceum.kit.pagination import Page
from lyceum.kit.routing import Router
from lyceum.models.channels import PushDevice, PushSubscription

channels = Router(tags=["channels"])

API = "/api/v1"


async def channel_service(session: Session, runtime: RuntimeDep, clock: ClockDep) -> ChannelService:
    return ChannelService(session, runtime, clock.now())


Channels = Annotated[ChannelService, Depends(channel_service)]


def _subscription_out(row: PushSubscription) -> schemas.PushSubscriptionOut:
    return schemas.PushSubscriptionOut(id=row.id, endpoint=row.endpoint, created_at=row.created_at)


def _device_out(row: PushDevice) -> schemas.DeviceOut:
    return schemas.DeviceOut(id=row.id, platform=row.platform, created_at=row.created_at)


# Phone ------------------------------------------------------------------------------------


@channels.put(
    "/me/phone",
    summary="Set your phone number and get a verification code by SMS",
    description="The number must be E.164 (`+84901234567`; 422 naming `number` "
    "otherwise). A 6-digit code, valid 10 minutes, is texted to it; the phone receives "
    "nothing else until the code comes back (POST /me/phone/verify). Codes sent are "
    "limited per account (PHONE_VERIFICATION_RATE_LIMIT, default 3 per hour; 429 with "
    "Retry-After). Setting the same, already verified number again sends nothing. 409 "
    "`sms-not-configured` when the server has no SMS provider, 409 `phone-number-taken` "
    "when another account verified the number.",
)
async def set_phone(
    body: schemas.PhoneIn, caller: CurrentUser, service: Channels
) -> schemas.PhoneOut:
    return phone_out(await service.set_phone(caller, body.number))


@channels.post(
    "/me/phone/verify",
    summary="Verify your phone with the code it received",
    description="422 `wrong-code` (counted: after 5 wrong codes the code stops working), "
    "`code-expired` or `code-attempts-exceeded`; then set the number again for a new "
    "code. 409 `no-code-pending` when no code was sent.",
)
async def verify_phone(
    body: schemas.PhoneVerifyIn, caller: CurrentUser, service: Channels
) -> schemas.PhoneOut:
    return phone_out(await service.verify_phone(caller, body.code))


@channels.get("/me/phone", summary="Your phone number and whether it is verified")
async def get_phone(caller: CurrentUser, service: Channels) -> schemas.PhoneOut:
    return phone_out(await service.phone(caller))


@channels.delete(
    "/me/phone",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove your phone number (no more SMS)",
)
async def delete_phone(caller: CurrentUser, service: Channels) -> None:
    await service.remove_phone(caller)


# Web Push ---------------------------------------------------------------------------------


@channels.get(
    "/notifications/push/vapid-public-key",
    summary="The key browsers subscribe to Web Push with",
    description="409 `web-push-not-configured` when the server has no VAPID key.",
)
async def vapid_public_key(caller: CurrentUser, service: Channels) -> schemas.VapidKeyOut:
    return schemas.VapidKeyOut(public_key=service.vapid_public_key())


@channels.post(
    "/me/push-subscriptions",
    summary="Register this browser for Web Push",
    description="The body is the browser's `PushSubscription.toJSON()` as it comes. 201 "
    "with `Location` for a new subscription, 200 when the endpoint was registered "
    "already (it is now yours, with these keys). A subscription its push service "
    "reports gone (404/410) is removed on the next send.",
    responses={201: {"model": schemas.PushSubscriptionOut, "description": "Registered."}},
)
async def add_push_subscription(
    body: schemas.PushSubscriptionIn, caller: CurrentUser, service: Channels, response: Response
) -> schemas.PushSubscriptionOut:
    row, created = await service.subscribe(caller, body)
    if created:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = f"{API}/me/push-subscriptions/{row.id}"
    return _subscription_out(row)


@channels.get("/me/push-subscriptions", summary="Your browsers registered for Web Push")
async def list_push_subscriptions(
    caller: CurrentUser, service: Channels
) -> Page[schemas.PushSubscriptionOut]:
    rows = await service.subscriptions(caller)
    return Page.of_all([_subscription_out(row) for row in rows])


@channels.get(
    "/me/push-subscriptions/{subscription_id:uuid}", summary="One of your push subscriptions"
)
async def get_push_subscription(
    subscription_id: uuid.UUID, caller: CurrentUser, service: Channels
) -> schemas.PushSubscriptionOut:
    return _subscription_out(await service.subscription(caller, subscription_id))


@channels.delete(
    "/me/push-subscriptions/{subscription_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Unregister a browser from Web Push",
)
async def delete_push_subscription(
    subscription_id: uuid.UUID, caller: CurrentUser, service: Channels
) -> None:
    await service.unsubscribe(caller, subscription_id)


# Mobile devices ---------------------------------------------------------------------------


@channels.post(
    "/me/devices",
    summary="Register this app install for mobile push (FCM)",
    description="201 with `Location` for a new registration token, 200 when it was "
    "registered already (it is now yours). 409 `mobile-push-not-configured` when the "
    "server has no FCM service account. A token FCM reports unregistered is removed on "
    "the next send.",
    responses={201: {"model": schemas.DeviceOut, "description": "Registered."}},
)
async def add_device(
    body: schemas.DeviceIn, caller: CurrentUser, service: Channels, response: Response
) -> schemas.DeviceOut:
    row, created = await service.register_device(caller, body)
    if created:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = f"{API}/me/devices/{row.id}"
    return _device_out(row)


@channels.get("/me/devices", summary="Your app installs registered for mobile push")
async def list_devices(caller: CurrentUser, service: Channels) -> Page[schemas.DeviceOut]:
    return Page.of_all([_device_out(row) for row in await service.devices(caller)])


@channels.get("/me/devices/{device_id:uuid}", summary="One of your registered devices")
async def get_device(
    device_id: uuid.UUID, caller: CurrentUser, service: Channels
) -> schemas.DeviceOut:
    return _device_out(await service.device(caller, device_id))


@channels.delete(
    "/me/devices/{device_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Unregister a device from mobile push",
)
async def delete_device(device_id: uuid.UUID, caller: CurrentUser, service: Channels) -> None:
    await service.unregister_device(caller, device_id)
