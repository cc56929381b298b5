"""The load generator of `bench/load.py`: locust (headless, its library API) in a process
of its own, because locust patches the standard library with gevent.

    python bench/load_locust.py CONFIG.json RESULT.json

CONFIG names the API processes (`hosts`), the accounts (`accounts`, `password`), the
demo catalog (`catalog`: courses, lessons, quiz, paid courses), SECRET_KEY (the sandbox
provider's webhook key derives from it) and the plan: `steps`, a list of
`{"rate": requests/s, "seconds": measured seconds}` run one after the other with
`warmup` unmeasured seconds before each. Every locust user sends one request per
second (`constant_throughput(1)`), so a step at R requests/s runs R users; each user
sticks to one process (user i to hosts[i % len(hosts)]), like a sticky load balancer.
RESULT gets, per step: the wall-clock window, requests, failures (with samples), and
per route name: count, failures, p50, p99, max.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import itertools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import websocket  # noqa: E402  (websocket-client, a locust dependency)
from locust import constant_throughput, events, task  # noqa: E402
from locust.contrib.fasthttp import FastHttpUser  # noqa: E402
from locust.env import Environment  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

# The mix, per request (each locust task is exactly one request or one Socket.IO event;
# a flow of several requests queues its next steps, so these are shares of requests).
# A visit is one learner signed in for VISIT_REQUESTS requests; the sign-in that starts
# it is the sign-in share (1 / VISIT_REQUESTS, ~2 %).
WEIGHTS: dict[str, float] = {
    "browse": 12,  # catalog page (sorted listing or popular courses)
    "search": 10,  # catalog search ?q=
    "course": 12,  # course page
    "outline": 5,  # course modules and lessons
    "lesson": 22,  # read a lesson
    "complete": 7,  # mark a lesson done (progress update)
    "progress": 4,  # course progress
    "enrollments": 3,  # my courses
    "tutor": 2,  # ask the offline tutor: conversation + question (2 requests)
    "chat": 8,  # a chat message in the course room (Socket.IO, acked)
    "quiz": 1.5,  # my attempts, start, submit (3 requests)
    "buy": 0.7,  # checkout + the provider's webhook (+ a redelivery 1 in 3)
}
VISIT_REQUESTS = 50
SEARCH_WORDS = [
    "python", "statistics", "finance", "biology", "cell", "loops", "data", "budget",
    "lap trinh", "dia ly", "Việt Nam", "probability", "functions", "variables", "money",
]  # fmt: skip
QUESTIONS = [
    "What is the difference between a list and a tuple?",
    "Can you explain this lesson in simpler words?",
    "Why does range(5) start at 0?",
    "What should I review before the quiz?",
]

logging.basicConfig(level=logging.WARNING)
CONFIG: dict[str, Any] = {}
_accounts = itertools.count()
_user_ids = itertools.count()
_lock = threading.Lock()


def _next_account() -> str:
    with _lock:
        index = (CONFIG["account_offset"] + next(_accounts)) % len(CONFIG["accounts"])
    return str(CONFIG["accounts"][index])


def _signed_webhook(body: bytes, event_id: str) -> dict[str, str]:
    from pydantic import SecretStr

    from lyceum.config import Settings
    from lyceum.payments.providers.sandbox import sign_webhook

    settings = Settings(secret_key=SecretStr(CONFIG["secret_key"]))
    return sign_webhook(settings, body, event_id, int(time.time()))


class ChatSocket:
    """One Socket.IO connection over a raw WebSocket (Engine.IO 4): connect with the
    access token, join the course room, send acked messages; a greenlet reads every
    frame (pings, acks, the room's broadcasts)."""

    def __init__(self, url: str, token: str) -> None:
        self.ws = websocket.create_connection(url, timeout=15)
        self.acks: dict[int, gevent.event.AsyncResult] = {}
        self.ids = itertools.count(1)
        opening = self.ws.recv()
        if not str(opening).startswith("0"):
            raise RuntimeError(f"no Engine.IO open packet: {opening!r}")
        self.ws.send("40" + json.dumps({"token": token}))
        answer = str(self.ws.recv())
        if not answer.startswith("40"):
            raise RuntimeError(f"connect refused: {answer[:200]}")
        self.reader = gevent.spawn(self._read)

    def _read(self) -> None:
        while True:
            try:
                frame = self.ws.recv()
            except Exception:
                return
            if not isinstance(frame, str):
                continue
            if frame == "2":
                self.ws.send("3")
            elif frame.startswith("43"):
                digits = "".join(itertools.takewhile(str.isdigit, frame[2:]))
                result = self.acks.pop(int(digits), None) if digits else None
                if result is not None:
                    result.set(json.loads(frame[2 + len(digits) :])[0])

    def call(self, event: str, data: dict[str, Any], timeout: float = 15.0) -> Any:
        ack_id = next(self.ids)
        result: gevent.event.AsyncResult = gevent.event.AsyncResult()
        self.acks[ack_id] = result
        self.ws.send(f"42{ack_id}" + json.dumps([event, data]))
        return result.get(timeout=timeout)

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.reader.kill(block=False)


class Learner(FastHttpUser):
    wait_time = constant_throughput(1)
    network_timeout = 30.0
    connection_timeout = 10.0
    host = "http://127.0.0.1"

    def __init__(self, environment: Environment) -> None:
        index = next(_user_ids)
        hosts = CONFIG["hosts"]
        self.host = hosts[index % len(hosts)]
        super().__init__(environment)
        self.pending: list[Callable[[], None]] = []
        self.left = 0
        self.token = ""
        self.email = ""
        self.socket: ChatSocket | None = None
        self.room_id = ""
        self.random = random.Random(index)
        self.first_visit = True
        self.actions = list(WEIGHTS)
        self.weights = [WEIGHTS[name] for name in self.actions]

    def on_stop(self) -> None:
        self._close_socket()

    # Plumbing -------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _get(self, path: str, name: str) -> Any:
        with self.client.get(path, name=name, headers=self._auth(), catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {(r.text or '')[:300]}")
                return None
            return r.json()

    def _send(
        self,
        method: str,
        path: str,
        name: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> Any:
        all_headers = self._auth() | (headers or {})
        with self.client.request(
            method, path, name=name, json=body, data=data, headers=all_headers,
            catch_response=True,
        ) as r:  # fmt: skip
            if not 200 <= (r.status_code or 0) < 300:
                r.failure(f"{r.status_code}: {(r.text or '')[:300]}")
                return None
            return r.json() if r.text else {}

    def _close_socket(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None

    def _course(self) -> dict[str, Any]:
        return dict(self.random.choice(CONFIG["catalog"]["free"]))

    # The one task: the next step of a flow, or a new action --------------------------

    def on_start(self) -> None:
        self.left = 0
        self.first_visit = True

    @task
    def tick(self) -> None:
        if self.left <= 0:
            self._sign_in()
            return
        self.left -= 1
        if self.pending:
            self.pending.pop(0)()
            return
        action = self.random.choices(self.actions, self.weights)[0]
        getattr(self, f"do_{action}")()

    def _sign_in(self) -> None:
        self._close_socket()
        self.pending.clear()
        self.email = _next_account()
        body = {"email": self.email, "password": CONFIG["password"]}
        with self.client.post(
            "/api/v1/auth/login", json=body, name="POST /auth/login", catch_response=True
        ) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {(r.text or '')[:300]}")
                # A learner whose sign-in failed tries again a little later, not at once.
                gevent.sleep(10)
                return
            self.token = r.json()["access_token"]
        # The users start together: a random first visit spreads their sign-ins.
        self.left = self.random.randint(1, VISIT_REQUESTS) if self.first_visit else VISIT_REQUESTS
        self.first_visit = False

    # Actions --------------------------------------------------------------------------

    def do_browse(self) -> None:
        if self.random.random() < 0.5:
            self._get("/api/v1/courses/popular?size=6", "GET /courses/popular")
        else:
            sort = self.random.choice(["newest", "popular", "rating"])
            self._get(f"/api/v1/courses?sort={sort}&page=1&size=12", "GET /courses")

    def do_search(self) -> None:
        word = self.random.choice(SEARCH_WORDS)
        self._get(f"/api/v1/courses?q={word}&page=1&size=12", "GET /courses?q=")

    def do_course(self) -> None:
        course = self.random.choice(CONFIG["catalog"]["all"])
        self._get(f"/api/v1/courses/{course['id']}", "GET /courses/{id}")

    def do_outline(self) -> None:
        course = self._course()
        self._get(f"/api/v1/courses/{course['id']}/modules", "GET /courses/{id}/modules")

    def do_lesson(self) -> None:
        lesson = self.random.choice(self._course()["lessons"])
        self._get(f"/api/v1/lessons/{lesson}", "GET /lessons/{id}")

    def do_complete(self) -> None:
        lesson = self.random.choice(self._course()["lessons"])
        self._send("POST", f"/api/v1/lessons/{lesson}/complete", "POST /lessons/{id}/complete")

    def do_progress(self) -> None:
        course = self._course()
        self._get(f"/api/v1/courses/{course['id']}/progress", "GET /courses/{id}/progress")

    def do_enrollments(self) -> None:
        self._get("/api/v1/me/enrollments", "GET /me/enrollments")

    def do_tutor(self) -> None:
        course = self._course()
        created = self._send(
            "POST", "/api/v1/tutor/conversations", "POST /tutor/conversations",
            {"course_id": course["id"]},
        )  # fmt: skip
        if created is None:
            return
        question = self.random.choice(QUESTIONS)

        def ask() -> None:
            self._send(
                "POST", f"/api/v1/tutor/conversations/{created['id']}/messages",
                "POST /tutor/conversations/{id}/messages", {"content": question},
            )  # fmt: skip

        self.pending.append(ask)

    def do_chat(self) -> None:
        started = time.perf_counter()
        name, exception, answer = "SIO message", None, None
        try:
            if self.socket is None:
                name = "SIO connect+join"
                url = self.host.replace("http://", "ws://") + (
                    "/socket.io/?EIO=4&transport=websocket"
                )
                self.socket = ChatSocket(url, self.token)
                course = self._course()
                answer = self.socket.call("join_room", {"course_id": course["id"]})
                if answer.get("ok"):
                    self.room_id = answer["room"]["id"]
            else:
                answer = self.socket.call(
                    "message",
                    {"room_id": self.room_id, "client_id": uuid.uuid4().hex, "text": "hello"},
                )
            if not (isinstance(answer, dict) and answer.get("ok")):
                exception = RuntimeError(f"refused: {str(answer)[:300]}")
        except (Exception, gevent.Timeout) as error:
            exception = RuntimeError(f"{type(error).__name__}: {error}")
            self._close_socket()
        events.request.fire(
            request_type="WS", name=name, response_time=(time.perf_counter() - started) * 1000,
            response_length=0, exception=exception, context={},
        )  # fmt: skip

    def do_quiz(self) -> None:
        quiz = CONFIG["catalog"]["quiz"]
        mine = self._get(
            f"/api/v1/quizzes/{quiz['id']}/attempts/me", "GET /quizzes/{id}/attempts/me"
        )
        if mine is None:
            return
        items = mine.get("items", mine) if isinstance(mine, dict) else mine
        if len(items) >= quiz["max_attempts"]:
            return

        def start() -> None:
            attempt = self._send(
                "POST", f"/api/v1/quizzes/{quiz['id']}/attempts", "POST /quizzes/{id}/attempts"
            )
            if attempt is None:
                return
            answers = [self._answer(question) for question in attempt["questions"]]

            def submit() -> None:
                self._send(
                    "POST", f"/api/v1/attempts/{attempt['id']}/submit",
                    "POST /attempts/{id}/submit", {"answers": answers},
                )  # fmt: skip

            self.pending.append(submit)

        self.pending.append(start)

    def _answer(self, question: dict[str, Any]) -> dict[str, Any]:
        """A learner's answer: a random option, a random truth value, a short text."""
        answer: dict[str, Any] = {"question_id": question["question_id"]}
        options = [option["id"] for option in question.get("options") or []]
        kind = question["kind"]
        if kind == "single_choice" and options:
            answer["choice"] = self.random.choice(options)
        elif kind == "multiple_choice" and options:
            answer["choices"] = self.random.sample(options, self.random.randint(1, len(options)))
        elif kind == "true_false":
            answer["value"] = self.random.random() < 0.5
        else:
            answer["text"] = self.random.choice(["4", "a list", "for loop"])
        return answer

    def do_buy(self) -> None:
        mine = self._get("/api/v1/me/enrollments?size=100", "GET /me/enrollments")
        if mine is None:
            return
        held = {
            str(item.get("course_id") or item.get("course", {}).get("id")) for item in mine["items"]
        }
        unpaid = [course for course in CONFIG["catalog"]["paid"] if course["id"] not in held]
        if not unpaid:
            return
        course = self.random.choice(unpaid)

        def checkout() -> None:
            order = self._send(
                "POST", f"/api/v1/courses/{course['id']}/checkout", "POST /courses/{id}/checkout",
                {"provider": "sandbox"}, headers={"Idempotency-Key": uuid.uuid4().hex},
            )  # fmt: skip
            if order is None:
                return
            checkout_id = str(order["checkout_url"]).rstrip("/").rsplit("/", 1)[-1]
            event_id = f"sbx_evt_{uuid.uuid4().hex[:24]}"
            body = json.dumps(
                {
                    "id": event_id,
                    "type": "payment.succeeded",
                    "data": {
                        "checkout_id": checkout_id,
                        "order_id": order["id"],
                        "payment_id": f"sbx_pay_{uuid.uuid4().hex[:24]}",
                        "amount": order["amount"],
                        "currency": order["currency"],
                    },
                },
                separators=(",", ":"),
            ).encode()

            def webhook() -> None:
                headers = _signed_webhook(body, event_id) | {"Content-Type": "application/json"}
                self._send(
                    "POST", "/api/v1/payments/webhooks/sandbox", "POST /payments/webhooks/sandbox",
                    data=body, headers=headers,
                )  # fmt: skip

            self.pending.append(webhook)
            if self.random.random() < 1 / 3:
                self.pending.append(webhook)  # the provider delivers it again

        self.pending.append(checkout)


# Running the plan ---------------------------------------------------------------------


def _route_stats(environment: Environment) -> dict[str, Any]:
    routes: dict[str, Any] = {}
    for (name, method), entry in sorted(environment.stats.entries.items()):
        routes[name] = {
            "method": method,
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p50_ms": entry.get_response_time_percentile(0.5),
            "p99_ms": entry.get_response_time_percentile(0.99),
            "max_ms": entry.max_response_time,
            "mean_ms": entry.avg_response_time,
        }
    return routes


def _step(environment: Environment, rate: int, seconds: float, warmup: float) -> dict[str, Any]:
    runner = environment.runner
    assert runner is not None
    runner.start(rate, spawn_rate=CONFIG["spawn_rate"], wait=False)
    deadline = time.monotonic() + 60 + rate / CONFIG["spawn_rate"]
    while runner.user_count < rate and time.monotonic() < deadline:
        gevent.sleep(0.5)
    gevent.sleep(warmup)
    environment.stats.reset_all()
    runner.exceptions = {}
    started_wall = time.time()
    started = time.monotonic()
    gevent.sleep(seconds)
    elapsed = time.monotonic() - started
    total = environment.stats.total
    errors = [
        {"route": error.name, "method": error.method, "error": str(error.error)[:400],
         "count": error.occurrences}
        for error in environment.stats.errors.values()
    ]  # fmt: skip
    # An exception in a task (a bug in this file or a response it cannot read) is an
    # error of the run too, not only the failed requests.
    for exception in runner.exceptions.values():
        errors.append(
            {"route": "(task)", "method": "", "error": str(exception["msg"])[:400],
             "count": exception["count"]}
        )  # fmt: skip
    task_errors = sum(exception["count"] for exception in runner.exceptions.values())
    result = {
        "rate": rate,
        "users": runner.user_count,
        "started": started_wall,
        "ended": started_wall + elapsed,
        "seconds": elapsed,
        "requests": total.num_requests,
        "failures": total.num_failures + task_errors,
        "task_errors": task_errors,
        "achieved_rps": total.num_requests / elapsed,
        "p50_ms": total.get_response_time_percentile(0.5),
        "p99_ms": total.get_response_time_percentile(0.99),
        "routes": _route_stats(environment),
        "errors": errors[:20],
    }
    print(
        f"  step {rate} rps: {result['achieved_rps']:.1f} rps achieved, "
        f"{total.num_requests} requests, {result['failures']} failures, "
        f"p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms",
        flush=True,
    )
    return result


def main() -> int:
    config_path, result_path = Path(sys.argv[1]), Path(sys.argv[2])
    CONFIG.update(json.loads(config_path.read_text()))
    environment = Environment(user_classes=[Learner], events=events)
    environment.create_local_runner()
    steps: list[dict[str, Any]] = []
    stop_when = CONFIG.get("stop_when_failing", False)
    for step in CONFIG["steps"]:
        outcome = _step(environment, int(step["rate"]), float(step["seconds"]), CONFIG["warmup"])
        steps.append(outcome)
        result_path.write_text(json.dumps({"steps": steps}, indent=1))
        held = (
            outcome["failures"] == 0
            and outcome["p99_ms"] < CONFIG.get("p99_limit_ms", 500)
            and outcome["achieved_rps"] >= 0.95 * outcome["rate"]
        )
        if stop_when and not held:
            break
    assert environment.runner is not None
    # Stopping the users waits for each one's task to end; a Socket.IO client whose
    # server closed it mid-frame (status 1011) can wait forever, so the wait is bounded:
    # the results are written already.
    gevent.spawn(environment.runner.quit).join(timeout=30)
    return 0


if __name__ == "__main__":
    code = main()
    # The results are on disk: leave without waiting for users still stopping (the
    # bench reads this process's output to its end, so it would wait with them).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
