"""What refusing unstorable input costs: request models with Lyceum's checks (NUL, lone
surrogates, non-finite numbers at any depth, `lyceum.kit.validation.RequestModel`)
against the same fields in a plain pydantic model, in the same run.

    python bench/validation.py [--rounds R]

For each payload (a chat message, the hottest path; a quiz submission of 50 answers; a
profile update with 4 KiB of preferences) it validates the payload as parsed JSON
(what FastAPI and python-socketio hand over) many times with each model, alternating,
and prints validations per second and the ratio checked / plain (1.0 = free).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pydantic import BaseModel, ConfigDict, create_model

from lyceum.assessments.schemas.attempts import SubmitIn
from lyceum.chat.schemas import MessageIn
from lyceum.identity.schemas import ProfileUpdate


def plain(model: type[BaseModel]) -> type[BaseModel]:
    """The same fields (nested models included) and configuration on a model without
    the checks: the baseline."""
    fields: dict[str, Any] = {
        name: (field.annotation, field) for name, field in model.model_fields.items()
    }
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"Plain{model.__name__}",
        __config__=ConfigDict(extra="forbid", regex_engine="python-re"),
        **fields,
    )


PAYLOADS: dict[str, tuple[type[BaseModel], Any]] = {
    "chat message": (
        MessageIn,
        {"room_id": str(uuid.uuid4()), "client_id": uuid.uuid4().hex, "text": "Xin chào! " * 20},
    ),
    "quiz submission (50 answers)": (
        SubmitIn,
        {
            "answers": [
                {"question_id": str(uuid.uuid4()), "text": "Quang hợp tạo ra oxy. " * 80}
                for _ in range(50)
            ]
        },
    ),
    "profile update (4 KiB preferences)": (
        ProfileUpdate,
        {
            "bio": "Học lập trình",
            "preferences": {
                "theme": "dark",
                "notifications": {f"course-{n}": {"email": n % 2 == 0} for n in range(80)},
                "scores": [n / 7 for n in range(60)],
            },
        },
    ),
}


def rate(model: type[BaseModel], payload: Any, seconds: float) -> float:
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            model.model_validate(payload)
        count += 50
    return count / (time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="per round and model")
    args = parser.parse_args(argv)
    print(f"{'payload':38} {'checked/s':>12} {'plain/s':>12} {'ratio':>6}")
    for name, (model, payload) in PAYLOADS.items():
        baseline = plain(model)
        checked_rates, plain_rates = [], []
        for _ in range(args.rounds):
            checked_rates.append(rate(model, payload, args.seconds))
            plain_rates.append(rate(baseline, payload, args.seconds))
        checked, bare = statistics.median(checked_rates), statistics.median(plain_rates)
        print(f"{name:38} {checked:12,.0f} {bare:12,.0f} {checked / bare:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
