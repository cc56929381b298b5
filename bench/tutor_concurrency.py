"""Scenario: the tutor's realistic concurrency, 200 conversations whose answers take 10 s.

    python bench/tutor_concurrency.py [--streams 200] [--stream-duration 10] [--rounds 2]
                                      [--processes 1] [--provider claude|openai]
                                      [--profile] [--json PATH]

Issue 21's third target: 200 concurrent tutor conversations, each answered by a provider
that streams its answer over 10 s, against one `lyceum serve` (or `--processes N`, the
questions spread over them in turn, as a Service spreads them over pods), as a ratio of ideal
(ideal wall = one answer's 10 s, since they all run at once; ratio = 10 s / actual wall;
target >= 0.9), and the CPU per streamed answer against the provider SDK alone.

1. An embedded PostgreSQL (in a temp dir, migrated), `lyceum demo` and the index of "The
   Living Cell" (`lyceum reindex --course`), as `bench/tutor.py` does (its helpers).
2. The fake provider (`python -m tests.support.fake_llm --stream-duration 10`, first-token
   delay 0: the answer's deltas are spread evenly over 10 s) in its own process, and one
   `python -m lyceum serve` pointed at it (AI_BASE_URL), TUTOR_RATE_LIMIT raised, the
   answer cache left ON (the default TTL) and every question distinct (a numbered
   variant of one of 20 questions), so the cache cannot answer any of them: the bench
   checks that every answer took at least half the stream duration.
3. Per round: the same 200-stream burst straight against the fake (the control: what the
   machine allows with no Lyceum), then 200 questions written at once to Lyceum, each in
   its own new conversation, on its own connection, from a separate client process.
   Figures: answers completed, wall W (first write to the last `done`), ratio = duration
   / W, time to first token (first `delta` event) p50/p99 from the burst's start and from
   each request's own write, and Lyceum's process CPU over the burst / answers.
4. The provider SDK alone (`anthropic` or `openai`, whichever the fake speaks, one shared
   client, `stream=True`) streaming the same number of answers at once from the same fake
   in a bare asyncio loop in a process of its own, once over the SDK's default transport
   (httpx2) and once over its aiohttp transport (`DefaultAioHttpClient`, which Lyceum
   streams over), and Lyceum's own `llm.stream_answer` (its stream and tool loop) the
   same way: CPU per answer of each, and the ratio Lyceum CPU per answer / SDK CPU per
   answer against both, all in this run.

Exit code 0 whatever the figures; 1 if a server fails to start or any request fails.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    Server,
    load_average,
    median,
    migrated_postgres,
    print_profile,
    sampled,
    scenario_main,
    start_lyceum_serve,
    stop_server,
    tail,
)
from bench.tutor import (
    QUESTIONS,
    REQUEST_TIMEOUT,
    BurstSpec,
    CpuMeter,
    FloorSpec,
    SequentialSpec,
    burst_figures,
    fake_request,
    lyceum_env,
    lyceum_request,
    new_conversations,
    register_learners,
    run_client,
    run_floor,
    seed_course,
    start_fake,
    stats_ms,
)

SCENARIO = "tutor_concurrency"
DATABASE = "lyceum_bench_tutorc"
TARGET_RATIO = 0.9
LYCEUM_STARTUP_TIMEOUT = 180.0
WARM_QUESTIONS = 2


def question(index: int) -> str:
    """A distinct question per index: the answer cache (keyed on the text) never hits."""
    return f"{QUESTIONS[index % len(QUESTIONS)]} (question {index})"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="200 concurrent tutor conversations with 10 s answers, as a ratio of "
        "ideal, and CPU per streamed answer against the provider SDK alone."
    )
    parser.add_argument("--provider", choices=("claude", "openai"), default="claude")
    parser.add_argument("--streams", type=int, default=200, help="concurrent conversations")
    parser.add_argument(
        "--stream-duration", type=float, default=10.0, help="seconds each answer streams (10)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="measured bursts (2)")
    parser.add_argument("--warmup-rounds", type=int, default=1, help="unmeasured bursts (1)")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="`lyceum serve` processes, the questions spread over them in turn (1)",
    )
    parser.add_argument("--learners", type=int, default=20, help="learner accounts (20)")
    # 80 connections in all, whatever the number of processes: the embedded server
    # takes 100 (max_connections), and a pool bigger than it refuses connections
    # ("too many clients") that the app answers 503.
    parser.add_argument(
        "--db-pool-size", type=int, help="DB_POOL_SIZE per process (40 / --processes)"
    )
    parser.add_argument(
        "--db-max-overflow", type=int, help="DB_MAX_OVERFLOW per process (40 / --processes)"
    )
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="OMP_NUM_THREADS for Lyceum (0: unset)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample Lyceum with py-spy during the first measured burst and print the top frames",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir afterwards")
    args = parser.parse_args(argv)
    if args.streams < 1 or args.stream_duration <= 0 or args.rounds < 1 or args.learners < 1:
        parser.error("need --streams, --rounds, --learners >= 1 and --stream-duration > 0")
    if args.processes < 1:
        parser.error("need --processes >= 1")
    if args.db_pool_size is None:
        args.db_pool_size = max(5, 40 // args.processes)
    if args.db_max_overflow is None:
        args.db_max_overflow = max(0, 40 // args.processes)
    return args


def _round_line(label: str, lyceum: dict[str, Any], fake: dict[str, Any], n: int) -> str:
    return (
        f"  {label:<8} lyceum {lyceum['ok']}/{n} answers, W {lyceum['wall_s']:.2f}s, ratio "
        f"{lyceum['ratio']:.3f}, first token p50/p99 {lyceum['first_delta']['p50_ms']:.0f}/"
        f"{lyceum['first_delta']['p99_ms']:.0f} ms, CPU {lyceum['cpu_ms_per_answer']:.1f} ms/"
        f"answer | fake alone W {fake['wall_s']:.2f}s ratio {fake['ratio']:.3f}"
    )


def run(args: argparse.Namespace, temp: Path) -> dict[str, Any]:
    load_before = load_average()
    started = time.perf_counter()
    postgres, url = migrated_postgres(temp, DATABASE)
    pgdata = temp / "pg"
    secret = secrets.token_urlsafe(48)
    servers: dict[str, Server] = {}
    n = args.streams
    rounds: list[dict[str, Any]] = []
    floor: list[dict[str, Any]] = []
    errors = 0
    profile = temp / "tutor_concurrency.prof"
    try:
        print("loading the demo catalog and indexing one course ...", flush=True)
        course_id, _, _, _ = seed_course(temp, url)
        fake = start_fake(temp, "fake", first_token_delay=0.0, stream_duration=args.stream_duration)
        servers["fake"] = fake
        env = lyceum_env(temp, url, fake, args, secret)
        # The default answer cache, on: the questions are distinct, so it cannot answer.
        env.pop("TUTOR_CACHE_TTL_SECONDS", None)
        apis: list[Server] = []
        for number in range(args.processes):
            name = "lyceum" if number == 0 else f"lyceum{number + 1}"
            apis.append(start_lyceum_serve(temp, name, env, timeout=LYCEUM_STARTUP_TIMEOUT))
            servers[name] = apis[-1]
        lyceum = apis[0]
        print(
            f"  fake pid {fake.pid} (answers stream over {args.stream_duration:g} s); lyceum "
            f"serve pid(s) {', '.join(str(api.pid) for api in apis)}, ready in "
            f"{', '.join(f'{api.started_in:.1f}' for api in apis)} s",
            flush=True,
        )
        learners = register_learners(lyceum.port, url, course_id, args.learners)
        total = args.warmup_rounds + args.rounds
        chats = new_conversations(lyceum.port, course_id, learners, n * total + WARM_QUESTIONS)
        print(f"  {len(learners)} learners, {len(chats)} conversations", flush=True)
        # One question at a time first: the first question loads what it loads.
        warm = tuple(
            (
                fake_request(fake.port, args.provider, question(-1 - i)),
                lyceum_request(apis[i % len(apis)].port, chat, learner.token, question(-1 - i)),
            )
            for i, (chat, learner) in enumerate(chats[:WARM_QUESTIONS])
        )
        warm_samples = run_client(
            SequentialSpec(warm), 60 + WARM_QUESTIONS * 4 * args.stream_duration
        )
        failed_warm = [s for pair in warm_samples for s in pair if not s.ok]
        for sample in failed_warm[:3]:
            print(f"    warm-up question error: {sample}", flush=True)
        errors += len(failed_warm)
        chats = chats[WARM_QUESTIONS:]
        budget = 120 + REQUEST_TIMEOUT + args.stream_duration
        for index in range(total):
            warmup = index < args.warmup_rounds
            label = "warm-up" if warmup else f"round {index - args.warmup_rounds + 1}"
            batch = chats[index * n : (index + 1) * n]
            first = index * n
            control = BurstSpec(
                tuple(fake_request(fake.port, args.provider, question(first + i)) for i in range(n))
            )
            ours = BurstSpec(
                tuple(
                    lyceum_request(
                        apis[i % len(apis)].port, chat, learner.token, question(first + i)
                    )
                    for i, (chat, learner) in enumerate(batch)
                )
            )
            fake_burst = run_client(control, budget)
            fake_result = burst_figures(fake_burst, args.stream_duration)
            time.sleep(1.0)
            meter = CpuMeter({**{api.name: api for api in apis}, "fake": fake}, pgdata)
            profiled = args.profile and index == args.warmup_rounds
            with sampled(lyceum.pid, profile) if profiled else contextlib.nullcontext():
                meter.start()
                burst = run_client(ours, budget)
                cpu = meter.stop()
            cpu["lyceum"] = sum(cpu.pop(api.name) for api in apis)
            result = burst_figures(burst, args.stream_duration)
            result["cpu_seconds"] = cpu
            result["cpu_ms_per_answer"] = cpu["lyceum"] / max(result["ok"], 1) * 1000
            ok = [s for s in burst.samples if s.ok]
            # From each request's own write (the burst's figures count from the first).
            result["first_delta_own"] = stats_ms([s.first_delta for s in ok])
            # An answer faster than half the stream did not come from the provider.
            result["short_circuited"] = sum(1 for s in ok if s.done < 0.5 * args.stream_duration)
            rounds.append({"round": label, "warmup": warmup, "lyceum": result, "fake": fake_result})
            print(_round_line(label, result, fake_result, n), flush=True)
            for sample in result["error_samples"][:3] + fake_result["error_samples"][:3]:
                print(f"    error: {sample}", flush=True)
            if result["short_circuited"]:
                print(
                    f"    error: {result['short_circuited']} answer(s) ended before half the "
                    "stream's duration (not the provider's stream)",
                    flush=True,
                )
            errors += result["errors"] + fake_result["errors"] + result["short_circuited"]
            time.sleep(2.0)  # the answers' storing ends before the next burst
        print(
            f"  the provider SDK alone (its two transports) and llm.stream_answer alone: {n} "
            "answers at once from the same fake, in a process of their own ...",
            flush=True,
        )
        floor = [
            asdict(result)
            for result in run_floor(
                FloorSpec(fake.port, args.provider, n, question(10_000)),
                120 + 4 * args.stream_duration,
            )
        ]
        if args.profile:
            print_profile("Lyceum during the first measured burst", [profile])
    finally:
        logs = {name: server.log_path for name, server in servers.items()}
        for name in list(servers):
            code = stop_server(servers.pop(name))
            if code not in (0, None, -signal.SIGINT):
                print(f"  {name} exited with code {code}; log {logs[name]}")
        for name, log in logs.items():
            if "Traceback" in tail(log, 200):
                print(f"  {name} logged a traceback; see {log}")
        postgres.stop()

    measured = [r for r in rounds if not r["warmup"]]
    sdk = next(f for f in floor if f["path"] == "SDK alone")
    sdk_aiohttp = next(f for f in floor if f["path"] == "SDK alone, aiohttp transport")
    stream_only = next(f for f in floor if f["path"] == "llm.stream_answer")
    lyceum_cpu = median([r["lyceum"]["cpu_ms_per_answer"] for r in measured])
    summary = {
        "completed": [r["lyceum"]["ok"] for r in measured],
        "wall_s": [r["lyceum"]["wall_s"] for r in measured],
        "ratio": median([r["lyceum"]["ratio"] for r in measured]),
        "fake_ratio": median([r["fake"]["ratio"] for r in measured]),
        "first_token_p50_ms": median([r["lyceum"]["first_delta"]["p50_ms"] for r in measured]),
        "first_token_p99_ms": median([r["lyceum"]["first_delta"]["p99_ms"] for r in measured]),
        "lyceum_cpu_ms_per_answer": lyceum_cpu,
        "sdk_cpu_ms_per_answer": sdk["cpu_ms_per_answer"],
        "stream_answer_cpu_ms_per_answer": stream_only["cpu_ms_per_answer"],
        "cpu_ratio_lyceum_over_sdk": lyceum_cpu / sdk["cpu_ms_per_answer"],
        "sdk_aiohttp_cpu_ms_per_answer": sdk_aiohttp["cpu_ms_per_answer"],
        "cpu_ratio_lyceum_over_sdk_aiohttp": lyceum_cpu / sdk_aiohttp["cpu_ms_per_answer"],
    }
    load_after = load_average()
    print()
    print(
        f"{n} concurrent conversations, answers streaming over {args.stream_duration:g} s "
        f"(provider: fake {args.provider}), {args.processes} `lyceum serve` process(es):"
    )
    for entry in measured:
        r = entry["lyceum"]
        print(
            f"  {entry['round']}: completed {r['ok']}/{n}, wall {r['wall_s']:.2f} s, ratio of "
            f"ideal {r['ratio']:.3f}; first token from the burst's start p50 "
            f"{r['first_delta']['p50_ms']:.0f} ms p99 {r['first_delta']['p99_ms']:.0f} ms, "
            f"from the request's own write p50 {r['first_delta_own']['p50_ms']:.0f} ms p99 "
            f"{r['first_delta_own']['p99_ms']:.0f} ms; deltas per answer "
            f"{r['deltas_per_stream']:.0f}, longest gap p50 {r['max_gap']['p50_ms']:.0f} ms; "
            f"CPU lyceum {r['cpu_seconds']['lyceum']:.2f} s, postgres "
            f"{r['cpu_seconds']['postgres']:.2f} s, fake {r['cpu_seconds']['fake']:.2f} s"
        )
    print(
        f"CPU per streamed answer: lyceum {lyceum_cpu:.1f} ms, the {args.provider} SDK alone "
        f"{sdk['cpu_ms_per_answer']:.1f} ms (W {sdk['wall_s']:.2f} s), the SDK alone over its "
        f"aiohttp transport {sdk_aiohttp['cpu_ms_per_answer']:.1f} ms (W "
        f"{sdk_aiohttp['wall_s']:.2f} s), llm.stream_answer alone "
        f"{stream_only['cpu_ms_per_answer']:.1f} ms (W {stream_only['wall_s']:.2f} s)"
    )
    print(
        f"load average before/after: {load_before} / {load_after}; {os.cpu_count()} CPUs; "
        f"run time {time.perf_counter() - started:.0f} s"
    )
    print(
        f"tutor concurrency: {n} x {args.stream_duration:g} s answers, ratio of ideal "
        f"{summary['ratio']:.3f} (target >= {TARGET_RATIO}; the fake alone "
        f"{summary['fake_ratio']:.3f}); first token p50 {summary['first_token_p50_ms']:.0f} ms "
        f"p99 {summary['first_token_p99_ms']:.0f} ms; CPU per answer lyceum/SDK "
        f"{summary['cpu_ratio_lyceum_over_sdk']:.1f}x (over the SDK's aiohttp transport: "
        f"{summary['cpu_ratio_lyceum_over_sdk_aiohttp']:.1f}x)"
    )
    if any(r["lyceum"]["short_circuited"] for r in measured):
        print("error: some answers came back faster than the provider streams them")
    return {
        "scenario": SCENARIO,
        "settings": {key: value for key, value in vars(args).items() if key != "json"},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "summary": summary,
        "rounds": rounds,
        "floor": floor,
        "errors": errors,
    }


def main(argv: Sequence[str] | None = None) -> int:
    return scenario_main(SCENARIO, parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
