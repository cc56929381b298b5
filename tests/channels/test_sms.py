"""SMS through the official Twilio SDK to a fake Twilio: a phone is verified by a code
before it receives anything, and a send happens once per idempotency key."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid

import pytest

from lyceum.channels.service import send_sms
from lyceum.kit.delivery import PermanentDeliveryError, TransientDeliveryError
from lyceum.kit.runtime import Runtime
from tests.channels.conftest import FROM_NUMBER, Live, Person, live_app, twilio_settings
from tests.support.channel_fakes import FakeTwilio


def fresh_number() -> str:
    """A valid San Francisco number no other test used (the tests commit)."""
    return f"+1415{secrets.randbelow(800) + 200}{secrets.randbelow(10000):04d}"


def code_in(twilio: FakeTwilio, to: str) -> str:
    found = re.search(r"\b(\d{6})\b", [m for m in twilio.messages if m.to == to][-1].body)
    assert found
    return found.group(1)


async def verified_phone(live: Live, twilio: FakeTwilio) -> Person:
    number = fresh_number()
    person = await live.person()
    answer = await live.http.put(
        "/api/v1/me/phone", json={"number": number}, headers=person.headers
    )
    assert answer.status_code == 200, answer.text
    await live.run_jobs()
    code = code_in(twilio, number)
    verified = await live.http.post(
        "/api/v1/me/phone/verify", json={"code": code}, headers=person.headers
    )
    assert verified.status_code == 200, verified.text
    return person


async def sms(live: Live, person: Person, text: str, key: str) -> str | None:
    async with live.runtime.database.sessionmaker() as session:
        sid = await send_sms(
            session, live.runtime, user_id=person.id, text=text, idempotency_key=key
        )
        await session.commit()
        return sid


async def test_a_phone_gets_a_code_then_notifications_once_verified(
    live: Live, twilio: FakeTwilio
) -> None:
    person = await live.person()
    number = fresh_number()
    spaced = f"{number[:2]} {number[2:5]}-{number[5:8]}-{number[8:]}"
    answer = await live.http.put(
        "/api/v1/me/phone", json={"number": spaced}, headers=person.headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["number"] == number
    assert answer.json()["verified"] is False
    await live.run_jobs()
    [code_message] = twilio.messages
    assert (code_message.to, code_message.sender) == (number, FROM_NUMBER)
    assert "verification code" in code_message.body

    # Unverified: nothing but the code reaches the phone.
    assert await sms(live, person, "Your grade is out", f"grade:{uuid.uuid4()}") is None
    assert len(twilio.messages) == 1

    code = code_in(twilio, number)
    verified = await live.http.post(
        "/api/v1/me/phone/verify", json={"code": code}, headers=person.headers
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["verified"] is True
    assert (await live.http.get("/api/v1/me/phone", headers=person.headers)).json()["verified"]

    key = f"grade:{uuid.uuid4()}"
    sid = await sms(live, person, "Your grade is out", key)
    assert sid is not None and sid.startswith("SM")
    assert twilio.messages[-1].body == "Your grade is out"
    assert twilio.messages[-1].sid == sid
    # The same key again (a retried job): nothing sent, the same sid answered.
    assert await sms(live, person, "Your grade is out", key) == sid
    assert len(twilio.messages) == 2

    deleted = await live.http.delete("/api/v1/me/phone", headers=person.headers)
    assert deleted.status_code == 204
    assert await sms(live, person, "Gone", f"grade:{uuid.uuid4()}") is None
    assert (await live.http.get("/api/v1/me/phone", headers=person.headers)).status_code == 404


@pytest.mark.parametrize("number", ["0901234567", "+1 555", "+999123456789", "not a number"])
async def test_a_number_that_is_not_e164_is_refused_naming_the_field(
    live: Live, twilio: FakeTwilio, number: str
) -> None:
    person = await live.person()
    answer = await live.http.put(
        "/api/v1/me/phone", json={"number": number}, headers=person.headers
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in answer.json()["errors"]] == ["body.number"]
    await live.run_jobs()
    assert twilio.messages == []


async def test_wrong_codes_are_counted_and_the_code_expires(live: Live, twilio: FakeTwilio) -> None:
    person = await live.person()
    number = fresh_number()
    await live.http.put("/api/v1/me/phone", json={"number": number}, headers=person.headers)
    await live.run_jobs()
    code = code_in(twilio, number)
    wrong = "000000" if code != "000000" else "111111"
    for left in (4, 3, 2, 1, 0):
        answer = await live.http.post(
            "/api/v1/me/phone/verify", json={"code": wrong}, headers=person.headers
        )
        assert answer.status_code == 422
        assert answer.json()["type"].endswith("/wrong-code")
        assert f"({left} attempt(s) left)" in answer.json()["detail"]
    # Five wrong codes: the right one no longer works either.
    answer = await live.http.post(
        "/api/v1/me/phone/verify", json={"code": code}, headers=person.headers
    )
    assert answer.json()["type"].endswith("/code-attempts-exceeded")

    # A new code (which replaces the old one), then too late for it.
    await live.http.put("/api/v1/me/phone", json={"number": number}, headers=person.headers)
    await live.run_jobs()
    fresh = code_in(twilio, number)
    live.clock.advance(minutes=10, seconds=1)
    answer = await live.http.post(
        "/api/v1/me/phone/verify", json={"code": fresh}, headers=person.headers
    )
    assert answer.status_code == 422
    assert answer.json()["type"].endswith("/code-expired")
    assert (await live.http.get("/api/v1/me/phone", headers=person.headers)).json()[
        "verified"
    ] is False


async def test_codes_are_rate_limited_per_account(live: Live) -> None:
    person = await live.person()
    number = fresh_number()
    for _ in range(3):
        answer = await live.http.put(
            "/api/v1/me/phone", json={"number": number}, headers=person.headers
        )
        assert answer.status_code == 200
    answer = await live.http.put(
        "/api/v1/me/phone", json={"number": number}, headers=person.headers
    )
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) > 0
    await live.run_jobs()


async def test_twilio_errors_become_permanent_or_transient_failures(
    live: Live, twilio: FakeTwilio
) -> None:
    person = await verified_phone(live, twilio)
    twilio.fail_next(400, 21610, "Attempt to send to unsubscribed recipient")
    with pytest.raises(PermanentDeliveryError, match="21610"):
        await sms(live, person, "Hi", f"k:{uuid.uuid4()}")
    twilio.fail_next(400, 21211, "The 'To' number is not a valid phone number.")
    with pytest.raises(PermanentDeliveryError, match="21211"):
        await sms(live, person, "Hi", f"k:{uuid.uuid4()}")
    key = f"k:{uuid.uuid4()}"
    twilio.fail_next(429, 20429, "Too Many Requests")
    with pytest.raises(TransientDeliveryError, match="429"):
        await sms(live, person, "Hi", key)
    twilio.fail_next(503, 20500, "Service unavailable")
    with pytest.raises(TransientDeliveryError, match="503"):
        await sms(live, person, "Hi", key)
    # The retry that gets through sends it, once.
    before = len(twilio.messages)
    assert await sms(live, person, "Hi", key) is not None
    assert await sms(live, person, "Hi", key) is not None
    assert len(twilio.messages) == before + 1


async def test_a_crash_before_the_job_commits_does_not_send_again(
    live: Live, twilio: FakeTwilio
) -> None:
    person = await verified_phone(live, twilio)
    key = f"crash:{uuid.uuid4()}"
    async with live.runtime.database.sessionmaker() as session:
        sid = await send_sms(
            session, live.runtime, user_id=person.id, text="Once", idempotency_key=key
        )
        await session.rollback()  # the worker dies before its transaction commits
    before = len(twilio.messages)
    assert await sms(live, person, "Once", key) == sid
    assert len(twilio.messages) == before
    assert [m.body for m in twilio.messages].count("Once") == 1


async def test_without_twilio_settings_sms_is_skipped_not_an_error(runtime: Runtime) -> None:
    async for live in live_app(runtime):
        person = await live.person()
        answer = await live.http.put(
            "/api/v1/me/phone", json={"number": fresh_number()}, headers=person.headers
        )
        assert answer.status_code == 409
        assert answer.json()["type"].endswith("/sms-not-configured")
        assert await sms(live, person, "Hi", f"k:{uuid.uuid4()}") is None


async def test_two_runs_of_one_job_at_once_send_one_message(live: Live, twilio: FakeTwilio) -> None:
    person = await verified_phone(live, twilio)
    key = f"twice:{uuid.uuid4()}"
    before = len(twilio.messages)
    first, second = await asyncio.gather(
        sms(live, person, "Just once", key), sms(live, person, "Just once", key)
    )
    assert first == second is not None
    assert len(twilio.messages) == before + 1


async def test_a_number_verified_by_another_account_is_refused(
    live: Live, twilio: FakeTwilio
) -> None:
    owner = await verified_phone(live, twilio)
    number = (await live.http.get("/api/v1/me/phone", headers=owner.headers)).json()["number"]
    other = await live.person()
    answer = await live.http.put("/api/v1/me/phone", json={"number": number}, headers=other.headers)
    assert answer.status_code == 409
    assert answer.json()["type"].endswith("/phone-number-taken")


async def test_a_messaging_service_sends_when_configured(
    runtime: Runtime, twilio: FakeTwilio
) -> None:
    service_sid = "MG" + "0" * 32
    changes = {**twilio_settings(twilio), "twilio_messaging_service_sid": service_sid}
    async for live in live_app(runtime, **changes):
        await verified_phone(live, twilio)
        assert {message.sender for message in twilio.messages} == {service_sid}


async def test_a_send_cut_off_before_twilio_answered_is_found_not_repeated(
    live: Live, twilio: FakeTwilio
) -> None:
    person = await verified_phone(live, twilio)
    key = f"cut:{uuid.uuid4()}"
    twilio.hang_up_next()
    with pytest.raises(TransientDeliveryError, match="did not answer"):
        await sms(live, person, "Your certificate is ready", key)
    [went_out] = [m for m in twilio.messages if m.body == "Your certificate is ready"]
    # The retry asks Twilio first, finds the message, and sends nothing.
    assert await sms(live, person, "Your certificate is ready", key) == went_out.sid
    assert [m.body for m in twilio.messages].count("Your certificate is ready") == 1
    assert twilio.lists[-1]["To"] == went_out.to
    assert await sms(live, person, "Your certificate is ready", key) == went_out.sid
    assert len(twilio.lists) == 1


async def test_two_accounts_verifying_one_number_at_once_one_wins_the_other_is_409(
    live: Live, twilio: FakeTwilio
) -> None:
    number = fresh_number()
    people, codes = [], []
    for _ in range(2):
        person = await live.person()
        answer = await live.http.put(
            "/api/v1/me/phone", json={"number": number}, headers=person.headers
        )
        assert answer.status_code == 200, answer.text
        await live.run_jobs()
        people.append(person)
        codes.append(code_in(twilio, number))
    answers = await asyncio.gather(
        *(
            live.http.post("/api/v1/me/phone/verify", json={"code": code}, headers=p.headers)
            for p, code in zip(people, codes, strict=True)
        )
    )
    assert sorted(answer.status_code for answer in answers) == [200, 409]
    [refused] = [answer for answer in answers if answer.status_code == 409]
    assert refused.json()["type"].endswith("/phone-number-taken")
