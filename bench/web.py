"""Scenario: the web app's pages against the JSON API calls that serve the same data.

    python bench/web.py [--duration S] [--concurrency N] [--rounds R] [--only NAME,...]
                        [--profile NAME] [--json PATH]

1. Starts an embedded PostgreSQL in a temp dir, creates a fresh database migrated to
   head, loads the demo catalog into it with `lyceum demo`, and starts Lyceum on it
   (uvicorn, one worker, one process, access log on, as a default install).
2. Signs in as the demo student (and the demo teacher for the instructor's pages)
   twice: through the web form (`GET /login` for the CSRF cookie and field, then
   `POST /login`, which sets the session cookie) and through `POST /api/v1/auth/login`
   (a bearer token).
3. For every row of `PAGES` whose route exists in this build: checks, from Lyceum's
   access log, that the page makes exactly the API calls the row names (every call the
   page makes in process is logged with the request id of the page's request); then
   measures, in alternating rounds, the page (with the session cookie) and each of
   those JSON calls (with the bearer token), each by itself, with the harness's load
   generator (a separate process). The page's baseline is the SUM of its calls: server
   CPU per request summed, and requests/s as sets of calls per second (1 / sum(1/rps)).
4. For every page measured: fetches it, follows its `<script src>` and
   `<link rel=stylesheet href>` (same origin) and requests each with
   `Accept-Encoding: gzip`: the compressed bytes as served, summed (target < 100 KB).

Reports, per page: server CPU per request and requests/s of the page and of its JSON
calls, and `json/page`, the JSON calls' CPU over the page's (target >= 0.5: the page
costs at most twice the data it shows), with the same ratio in requests/s next to it.
`--profile NAME` loads only that page, samples Lyceum with py-spy during its rounds and
prints the top frames.

Exit code 0 whatever the figures; 1 if the server fails to start or a request fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import os
import platform
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import psycopg

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    LOOPBACK,
    REPO_ROOT,
    BenchError,
    LoadResult,
    LoadSpec,
    Server,
    load_average,
    measure,
    median,
    migrated_postgres,
    scenario_main,
    start_server,
    stop_server,
    uvicorn_argv,
    wait_until_settled,
)
from bench.request_cost import print_profile, record_profile

SCENARIO = "web pages"
DATABASE = "lyceum_bench_web"
TARGET_RATIO = 0.5
ASSET_BUDGET_BYTES = 100 * 1024
STARTUP_TIMEOUT = 90.0
COURSE_SLUG = "python-foundations"  # the demo student is part-way through it
SEARCH = "python"
API = "/api/v1"

STUDENT = ("student@demo.lyceum.dev", "demo student passphrase")
TEACHER = ("teacher@demo.lyceum.dev", "demo teacher passphrase")


@dataclass
class Ids:
    """What the page paths and calls name: `{course}`, `{lesson}`, `{q}`, and the
    student's enrolled course ids (`enrolled`)."""

    course: str
    lesson: str
    q: str = SEARCH
    enrolled: list[str] = field(default_factory=list)

    def fill(self, template: str) -> str:
        return template.format(course=self.course, lesson=self.lesson, q=self.q)


@dataclass(frozen=True)
class PageRow:
    """A page and the JSON calls (relative to /api/v1, with their query) that serve
    its data: exactly what its handler asks `page.api` for, in this state of the demo
    data. `calls` may be a function of the ids when the number of calls depends on the
    data (one progress call per enrollment). A page added to the web app is one row."""

    name: str
    page: str
    calls: tuple[str, ...] | Callable[[Ids], list[str]]
    who: str | None = "student"  # whose session and token; None: signed out

    def api_calls(self, ids: Ids) -> list[str]:
        templates = self.calls(ids) if callable(self.calls) else list(self.calls)
        return [ids.fill(call) for call in templates]


def _my_learning(ids: Ids) -> list[str]:
    progress = [f"courses/{course}/progress" for course in ids.enrolled[:12]]
    return ["me/enrollments?size=50", *progress, "me/recommendations?limit=4"]


PAGES: tuple[PageRow, ...] = (
    PageRow("home", "/", ("courses/popular?size=6",)),
    PageRow("home (signed out)", "/", ("courses/popular?size=6",), who=None),
    PageRow("catalog search", "/catalog?q={q}", ("courses?q={q}&page=1&size=12",)),
    PageRow(
        "catalog search (signed out)",
        "/catalog?q={q}",
        ("courses?q={q}&page=1&size=12",),
        who=None,
    ),
    PageRow(
        "course page",
        "/courses/{course}",
        (
            "courses/{course}",
            "courses/{course}/progress",
            "courses/{course}/reviews?size=10",
            "courses/{course}/related?size=4",
        ),
    ),
    # Pages of the other areas: measured when their route exists in this build.
    PageRow("my learning", "/learn", _my_learning),
    PageRow(
        "lesson reader",
        "/learn/lessons/{lesson}",
        (
            "lessons/{lesson}",
            "courses/{course}",
            "courses/{course}/progress",
            "courses/{course}/files?size=100",
            "tutor/conversations?course_id={course}&size=20",
        ),
    ),
    PageRow("teach", "/teach", ("courses/teaching?size=100",), who="teacher"),
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Web pages against the JSON API calls behind them (server CPU, req/s), "
        "and the compressed JS + CSS each page ships."
    )
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per round (4)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections (8)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per target (3)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per target")
    parser.add_argument(
        "--idle", type=float, default=5.0, help="seconds of idle server CPU measured (5)"
    )
    parser.add_argument(
        "--only", metavar="NAMES", help="comma-separated page names (default: every page)"
    )
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="load only page NAME, sample Lyceum with py-spy during its rounds and print "
        "the top frames by own and inclusive samples",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temp dir (logs, data) afterwards"
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.concurrency < 1 or args.rounds < 1:
        parser.error("need --duration > 0, --warmup >= 0, --concurrency >= 1, --rounds >= 1")
    names = {row.name for row in PAGES}
    wanted = [name.strip() for name in (args.only or "").split(",") if name.strip()]
    if args.profile:
        wanted = [args.profile]
    unknown = [name for name in wanted if name not in names]
    if unknown:
        parser.error(f"unknown page(s) {unknown}; pages: {sorted(names)}")
    args.pages = [row for row in PAGES if not wanted or row.name in wanted]
    return args


# Setting up -------------------------------------------------------------------------------


def lyceum_cli(temp: Path, url: str, *argv: str, timeout: float = 300.0) -> str:
    """`python -m lyceum ARGV` on the bench database (this checkout's code)."""
    env = {**os.environ, "DATABASE_URL": url, "LYCEUM_DATA_DIR": str(temp / "data")}
    env["LOG_LEVEL"] = "WARNING"
    env["PYTHONPATH"] = str(REPO_ROOT / "src")
    result = subprocess.run(
        [sys.executable, "-m", "lyceum", *argv],
        cwd=temp,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(
            f"`lyceum {' '.join(argv)}` exited with {result.returncode}:\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return result.stdout


def start_lyceum(temp: Path, url: str) -> Server:
    server = start_server(
        "lyceum",
        lambda port: uvicorn_argv("lyceum.app:create_app", port, "--factory"),
        log_path=temp / "lyceum.log",
        env={
            **os.environ,
            "DATABASE_URL": url,
            "LYCEUM_DATA_DIR": str(temp / "data"),
            "LOG_LEVEL": "INFO",  # the access log stays on, as in a default install
            "LOG_FORMAT": "console",
            "ENVIRONMENT": "development",
            "DB_POOL_SIZE": "10",
            "DB_MAX_OVERFLOW": "10",
            # The bench signs in a few times; the defaults would allow it, a rerun within
            # 15 minutes on the same address might not.
            "LOGIN_RATE_LIMIT": "1000/minute",
            "LOGIN_ACCOUNT_RATE_LIMIT": "1000/minute",
        },
        cwd=temp,  # away from the checkout, so a developer's `.env` does not leak in
        timeout=STARTUP_TIMEOUT,
    )
    wait_until_settled(server)
    return server


class _Form(HTMLParser):
    """The value of the CSRF field of a page's first form."""

    def __init__(self) -> None:
        super().__init__()
        self.csrf: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("name") == "csrf_token" and self.csrf is None:
            self.csrf = found.get("value")


@dataclass(frozen=True)
class Identity:
    cookie: str  # the Cookie header of a signed-in browser (session + CSRF)
    bearer: str  # the Authorization header of an app


def sign_in(base: str, email: str, password: str) -> Identity:
    """The browser's way (the sign-in form, with its CSRF cookie and field) and the
    app's way (JSON login, bearer token)."""
    with httpx.Client(base_url=base, timeout=30.0, follow_redirects=False) as browser:
        form = browser.get("/login")
        parser = _Form()
        parser.feed(form.text)
        if form.status_code != 200 or not parser.csrf:
            raise BenchError(f"GET /login: {form.status_code}, CSRF field found: {parser.csrf}")
        answer = browser.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": parser.csrf, "next": "/"},
        )
        if answer.status_code != 303 or "lyceum_session" not in browser.cookies:
            raise BenchError(f"POST /login {email}: {answer.status_code} {answer.text[:300]}")
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
        login = browser.post(f"{API}/auth/login", json={"email": email, "password": password})
        if login.status_code != 200:
            raise BenchError(f"POST {API}/auth/login {email}: {login.status_code} {login.text}")
        return Identity(cookie=cookie, bearer=f"Bearer {login.json()['access_token']}")


def demo_ids(url: str, base: str, student: Identity) -> Ids:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT id FROM courses WHERE slug = %s", (COURSE_SLUG,)).fetchone()
        if row is None:
            raise BenchError(f"`lyceum demo` did not create {COURSE_SLUG!r}")
        course = str(row[0])
    with httpx.Client(base_url=base, timeout=30.0) as http:
        headers = {"Authorization": student.bearer}
        detail = http.get(f"{API}/courses/{course}", headers=headers).json()
        enrollments = http.get(f"{API}/me/enrollments?size=50", headers=headers).json()
    lesson = str(detail["modules"][0]["lessons"][0]["id"])
    enrolled = [str(item["course_id"]) for item in enrollments["items"]]
    return Ids(course=course, lesson=lesson, enrolled=enrolled)


# What a page calls ------------------------------------------------------------------------

_LOG_LINE = re.compile(r"request (\w+) (\S+) -> (\d+) .*request_id=(\S+)")


def calls_seen(server: Server, page: str, headers: dict[str, str]) -> tuple[int, list[str] | None]:
    """Request the page once with a request id of our own, which the web app's in-process
    API calls carry too; answer the page's status and the API paths (no query: the
    access log has none) the access log shows under that id; None for the paths when
    the page came from the signed-out page cache (`x-cache: hit`: it called nothing)."""
    request_id = f"bench-web-{uuid.uuid4().hex[:12]}"
    response = httpx.get(
        f"http://{LOOPBACK}:{server.port}{page}",
        headers={**headers, "X-Request-Id": request_id},
        timeout=30.0,
    )
    if response.headers.get("x-cache") == "hit":
        return response.status_code, None
    time.sleep(0.4)  # the access log is flushed every 100 ms
    paths = []
    for line in server.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        found = _LOG_LINE.search(line)
        if found and found[4] == request_id and found[2].startswith(API + "/"):
            paths.append(f"{found[1]} {found[2]}")
    return response.status_code, paths


def expected_paths(calls: list[str]) -> list[str]:
    return [f"GET {API}/{call.split('?', 1)[0]}" for call in calls]


# Assets -----------------------------------------------------------------------------------


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.scripts.append(str(found["src"]))
        elif (
            tag == "link" and "stylesheet" in (found.get("rel") or "").split() and found.get("href")
        ):
            self.styles.append(str(found["href"]))


@dataclass
class Asset:
    url: str
    kind: str  # js | css
    served_bytes: int  # as transferred (compressed when the server compressed it)
    raw_bytes: int
    encoding: str


def page_assets(base: str, page: str, headers: dict[str, str]) -> tuple[int, list[Asset]]:
    """(the page's own size, uncompressed as served; its scripts and stylesheets)."""
    with httpx.Client(base_url=base, timeout=30.0) as http:
        html = http.get(page, headers=headers)
        parser = _Assets()
        parser.feed(html.text)
        assets = []
        for kind, urls in (("js", parser.scripts), ("css", parser.styles)):
            for url in dict.fromkeys(urls):
                absolute = urljoin(base + page, url)
                if urlsplit(absolute).netloc != urlsplit(base).netloc:
                    raise BenchError(f"{page} loads {url} from another origin")
                with http.stream("GET", absolute, headers={"Accept-Encoding": "gzip"}) as answer:
                    if answer.status_code != 200:
                        raise BenchError(f"{page}: GET {url} -> {answer.status_code}")
                    served = b"".join(answer.iter_raw())
                encoding = answer.headers.get("content-encoding", "identity")
                raw = gzip.decompress(served) if encoding == "gzip" else served
                assets.append(Asset(url, kind, len(served), len(raw), encoding))
        return len(html.content), assets


# Measuring --------------------------------------------------------------------------------


def fmt(value: float, digits: int = 0) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # NaN -> "-"


def idle_cpu(server: Server, seconds: float) -> float:
    """The server's CPU seconds per second with no request (its background work)."""
    before = server.cpu_seconds()
    time.sleep(seconds)
    return (server.cpu_seconds() - before) / seconds


def net_cpu_us(result: LoadResult, idle: float) -> float:
    """CPU per request without the background work the server did meanwhile: a page
    answered 10 times a second would otherwise carry a tenth of a second's background
    CPU each, a cached JSON call answered 3,000 times almost none."""
    if not result.requests:
        return float("nan")
    used = result.server_cpu_us_per_request * result.requests / 1e6
    return max(used - idle * result.elapsed, 0.0) / result.requests * 1e6


def summarize(rounds: list[LoadResult], idle: float) -> dict[str, float]:
    return {
        "rps": median([r.rps for r in rounds]),
        "p50_ms": median([r.p50_ms for r in rounds]),
        "p99_ms": median([r.p99_ms for r in rounds]),
        "server_cpu_us_per_request": median([net_cpu_us(r, idle) for r in rounds]),
        "gross_cpu_us_per_request": median([r.server_cpu_us_per_request for r in rounds]),
        "errors": float(sum(r.errors for r in rounds)),
    }


def measure_page(
    args: argparse.Namespace,
    temp: Path,
    server: Server,
    row: PageRow,
    page: str,
    calls: list[str],
    headers: dict[str, dict[str, str]],
) -> tuple[dict[str, list[LoadResult]], int]:
    """Alternating rounds of the page and each of its calls: {target: rounds}, errors."""
    targets: dict[str, LoadSpec] = {}

    def spec(path: str, extra: dict[str, str], duration: float) -> LoadSpec:
        return LoadSpec(
            port=server.port,
            path=path,
            concurrency=args.concurrency,
            duration=duration,
            headers=tuple(extra.items()),
        )

    targets["page"] = spec(page, headers["page"], args.duration)
    for call in calls:
        targets[call] = spec(f"{API}/{call}", headers["api"], args.duration)
    errors = 0
    if args.warmup > 0:
        for target in targets.values():
            warm = dataclasses.replace(target, duration=args.warmup)
            errors += measure(server, warm).errors
    results: dict[str, list[LoadResult]] = {name: [] for name in targets}
    for index in range(1, args.rounds + 1):
        for name, target in targets.items():
            recorder = None
            if args.profile and name == "page":
                recorder = record_profile(server.pid, temp / "lyceum.stacks", args.duration)
            result = measure(server, target)
            if recorder is not None:
                recorder.wait(timeout=60)
            results[name].append(result)
            errors += result.errors
            label = "page" if name == "page" else f"api {name}"
            print(
                f"  round {index} {label[:48]:<48} {fmt(result.rps):>6} req/s  "
                f"CPU {fmt(result.server_cpu_us_per_request):>6} us/req gross  "
                f"errors {result.errors}",
                flush=True,
            )
            for sample in result.error_samples:
                print(f"    error: {sample}", flush=True)
    return results, errors


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    load_before = load_average()
    postgres, url = migrated_postgres(temp, DATABASE)
    server: Server | None = None
    report_pages: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    errors = 0
    idle = float("nan")
    try:
        started = time.perf_counter()
        lyceum_cli(temp, url, "demo")
        print(f"demo catalog loaded in {time.perf_counter() - started:.1f}s", flush=True)
        print("starting Lyceum ...", flush=True)
        server = start_lyceum(temp, url)
        print(f"  pid {server.pid} port {server.port} ready in {server.started_in:.1f}s")
        base = f"http://{LOOPBACK}:{server.port}"
        identities = {"student": sign_in(base, *STUDENT), "teacher": sign_in(base, *TEACHER)}
        ids = demo_ids(url, base, identities["student"])
        idle = idle_cpu(server, args.idle)
        print(f"server CPU when idle: {idle * 1000:.1f} ms per second (subtracted)", flush=True)
        for row in args.pages:
            page = ids.fill(row.page)
            calls = row.api_calls(ids)
            who = identities[row.who] if row.who else None
            headers = {
                "page": {"Cookie": who.cookie} if who else {},
                "api": {"Authorization": who.bearer} if who else {},
            }
            status, seen = calls_seen(server, page, headers["page"])
            if status == 404:
                skipped[row.name] = f"GET {page} -> 404: no such page in this build"
                print(f"{row.name}: skipped ({skipped[row.name]})", flush=True)
                continue
            if status != 200:
                raise BenchError(f"{row.name}: GET {page} -> {status}")
            for call in calls:
                answer = httpx.get(f"{base}{API}/{call}", headers=headers["api"], timeout=30.0)
                if answer.status_code != 200:
                    raise BenchError(f"{row.name}: GET {API}/{call} -> {answer.status_code}")
            expected = expected_paths(calls)
            mismatch = seen is not None and sorted(seen) != sorted(expected)
            if mismatch:
                print(
                    f"{row.name}: WARNING: the page called {seen}, the row names {expected}: "
                    "update its row in PAGES",
                    flush=True,
                )
            html_bytes, assets = page_assets(base, page, headers["page"])
            print(f"{row.name}: GET {page} and {len(calls)} API call(s) ...", flush=True)
            results, failed = measure_page(args, temp, server, row, page, calls, headers)
            errors += failed
            summary = {name: summarize(rounds, idle) for name, rounds in results.items()}
            page_cpu = summary["page"]["server_cpu_us_per_request"]
            api_cpu = sum(summary[call]["server_cpu_us_per_request"] for call in calls)
            api_rps = 1.0 / sum(1.0 / summary[call]["rps"] for call in calls)
            report_pages[row.name] = {
                "page": page,
                "calls": calls,
                "calls_seen": seen,
                "calls_match": not mismatch,
                "page_figures": summary["page"],
                "api_figures": {call: summary[call] for call in calls},
                "page_cpu_us": page_cpu,
                "api_cpu_us": api_cpu,
                "page_rps": summary["page"]["rps"],
                "api_sets_per_s": api_rps,
                "cpu_ratio": api_cpu / page_cpu if page_cpu else float("nan"),
                "rps_ratio": summary["page"]["rps"] / api_rps if api_rps else float("nan"),
                "html_bytes": html_bytes,
                "assets": [asset.__dict__ for asset in assets],
                "js_gzip_bytes": sum(a.served_bytes for a in assets if a.kind == "js"),
                "css_gzip_bytes": sum(a.served_bytes for a in assets if a.kind == "css"),
                "rounds": {name: [r.to_dict() for r in rounds] for name, rounds in results.items()},
            }
    finally:
        if server is not None:
            code = stop_server(server)
            if code not in (0, None):
                print(f"  lyceum exited with code {code}; log {server.log_path}")
        postgres.stop()
    if args.profile:
        print_profile(temp / "lyceum.stacks")
        print_breakdown(temp / "lyceum.stacks")

    load_after = load_average()
    print_report(report_pages, skipped)
    print(f"\nload average before/after: {load_before} / {load_after}")
    print(f"server CPU when idle: {idle * 1000:.1f} ms/s, subtracted from every round")
    for name, figures in report_pages.items():
        assets_total = figures["js_gzip_bytes"] + figures["css_gzip_bytes"]
        print(
            f"{name}: json/page {figures['cpu_ratio']:.2f} CPU, {figures['rps_ratio']:.2f} req/s "
            f"(target >= {TARGET_RATIO}); JS + CSS {assets_total / 1024:.1f} KB gzip "
            f"(target < {ASSET_BUDGET_BYTES // 1024} KB)"
        )
    return {
        "scenario": SCENARIO,
        "pages": report_pages,
        "skipped": skipped,
        "idle_cpu_seconds_per_second": idle,
        "target_ratio": TARGET_RATIO,
        "asset_budget_bytes": ASSET_BUDGET_BYTES,
        "settings": {
            "duration": args.duration,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "warmup": args.warmup,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "errors": errors,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# Where a page's time goes, from py-spy's collapsed stacks: (label, frames as
# (function, part of its file's path)); a sample counts for the first label one of whose
# frames is in its stack.
BREAKDOWN: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("in-process API calls (Api.call: the API's whole ASGI stack)", (("Api.call", "web/api.py"),)),
    ("rendering (Page.render: Jinja2, the response)", (("Page.render", "web/context.py"),)),
    ("session check (signed_in_user)", (("signed_in_user", "identity/service.py"),)),
    ("rest of the page dependency (context.page)", (("page", "web/context.py"),)),
    ("the page's route, besides the above", (("", "web/routes/"),)),
    ("request handling outside the route", (("RequestResponseCycle.run_asgi", "uvicorn"),)),
)
ELSEWHERE = "elsewhere (event loop, connections, background)"


def _has(frames: list[str], function: str, where: str) -> bool:
    for frame in frames:
        name, _, path = frame.partition(" (")
        if (not function or name == function) and where in path:
            return True
    return False


def print_breakdown(path: Path) -> None:
    """The samples by part (each sample counted once, for the innermost part listed
    first in BREAKDOWN)."""
    counts = dict.fromkeys([label for label, _ in BREAKDOWN] + [ELSEWHERE], 0)
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        total += int(count_text)
        label = next(
            (
                label
                for label, markers in BREAKDOWN
                if any(_has(frames, function, where) for function, where in markers)
            ),
            ELSEWHERE,
        )
        counts[label] += int(count_text)
    print(f"\nwhere the samples go ({total}, during the page's rounds):")
    for label, count in counts.items():
        print(f"  {100 * count / max(total, 1):5.1f}%  {label}")


def print_report(pages: dict[str, Any], skipped: dict[str, str]) -> None:
    print()
    header = (
        f"{'page':<18} {'page req/s':>10} {'page CPU us':>11} {'calls':>5} "
        f"{'json sets/s':>11} {'json CPU us':>11} {'json/page CPU':>13} {'json/page rps':>13} "
        f"{'JS gz KB':>8} {'CSS gz KB':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, f in pages.items():
        print(
            f"{name[:18]:<18} {fmt(f['page_rps']):>10} {fmt(f['page_cpu_us']):>11} "
            f"{len(f['calls']):>5} {fmt(f['api_sets_per_s']):>11} {fmt(f['api_cpu_us']):>11} "
            f"{f['cpu_ratio']:>13.2f} {f['rps_ratio']:>13.2f} "
            f"{f['js_gzip_bytes'] / 1024:>8.1f} {f['css_gzip_bytes'] / 1024:>9.1f}"
        )
    for name, f in pages.items():
        print(f"\n{name}: {f['page']}  (HTML {f['html_bytes'] / 1024:.1f} KB uncompressed)")
        for call, figures in f["api_figures"].items():
            print(
                f"  {API}/{call:<58} {fmt(figures['rps']):>6} req/s "
                f"{fmt(figures['server_cpu_us_per_request']):>6} us CPU"
            )
        for asset in f["assets"]:
            print(
                f"  {asset['kind']:<3} {asset['url']:<58} {asset['served_bytes'] / 1024:>6.1f} KB "
                f"{asset['encoding']} ({asset['raw_bytes'] / 1024:.1f} KB raw)"
            )
        if not f["calls_match"]:
            print(f"  WARNING: the page called {f['calls_seen']}")
    for name, why in skipped.items():
        print(f"\n{name}: skipped, {why}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return scenario_main("web", args, run)


if __name__ == "__main__":
    sys.exit(main())
