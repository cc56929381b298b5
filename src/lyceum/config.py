"""Settings: one validated instance, read from the environment and `.env`.

Every variable is documented in `.env.example`. Invalid values stop the process at
start with a message naming the variable (see `load_settings`).
"""

from __future__ import annotations

import os
import secrets
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AnyHttpUrl,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SECRET_FILE = "secret_key"  # noqa: S105 (a file name, not a secret)
MIN_SECRET_KEY_LENGTH = 32
# Where `lyceum serve` records the address it listens on, for the other processes on
# the same data dir (a standalone `lyceum worker`, `lyceum send-test-mail`).
SERVED_URL_FILE = "served_url"
# The base of links when PUBLIC_BASE_URL is unset and no `lyceum serve` has run.
FALLBACK_BASE_URL = "http://localhost:8000"
MIN_METRICS_TOKEN_LENGTH = 16
GENERATE_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'  # noqa: S105
# Keys printed in this repository's own docs and tests: known to everyone.
PUBLISHED_KEYS = frozenset(
    {
        "replace-me",
        "change-me",
        "changeme",
        "test-secret-key-that-is-long-enough-0123456789",
    }
)
# Strength, as zxcvbn estimates it (log10 of the guesses an attacker needs, which counts
# 10 per random character): generated keys of any common alphabet score 0.85 or more
# per character, keys built from repeats, sequences, keyboard walks or words score
# less. Measured on thousands of generated keys (hex, base64, url-safe, letters).
MIN_GUESS_DIGITS_PER_CHAR = 0.8
# Generated keys hold dictionary words by chance in at most a quarter of their length;
# a phrase ("my-lyceum-production-secret-2026") is mostly words.
MAX_WORD_SHARE = 0.3
# zxcvbn's cost grows fast with length; a key's first characters tell enough.
STRENGTH_CHECKED_CHARS = 128


def secret_weakness(value: str, min_length: int) -> str | None:
    """Why `value` is not a secret that only a computer could have chosen, or None.

    Length is not entropy: "a" * 40 and a sentence are long. The key signs every
    token (HS256): anyone who guesses it, offline and at leisure from one token, signs
    in as anyone. RFC 7518 asks for 256 bits of real randomness."""
    if len(value) < min_length:
        return f"must be at least {min_length} characters of generated randomness"
    if value.strip().lower() in PUBLISHED_KEYS or "replace-me" in value.lower():
        return "is an example value published in Lyceum's own docs"
    from zxcvbn import zxcvbn  # type: ignore[import-untyped]

    checked = value[:STRENGTH_CHECKED_CHARS]
    estimate = zxcvbn(checked, max_length=len(checked))
    if estimate["guesses_log10"] / len(checked) < MIN_GUESS_DIGITS_PER_CHAR:
        return "is guessable (repeated characters, a sequence, a keyboard walk or words)"
    words = sum(
        len(match["token"]) for match in estimate["sequence"] if match["pattern"] == "dictionary"
    )
    if words / len(checked) > MAX_WORD_SHARE:
        return "is made of dictionary words, not generated randomness"
    return None


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class AIProvider(StrEnum):
    claude = "claude"
    openai = "openai"
    openai_compatible = "openai-compatible"
    offline = "offline"


class StorageBackend(StrEnum):
    local = "local"
    s3 = "s3"


class SettingsError(Exception):
    """Raised when the environment does not describe a valid configuration."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        # `AI_API_KEY=` in a .env or compose file means "not set", not "empty string".
        env_ignore_empty=True,
    )

    environment: Environment = Environment.development
    debug: bool = False
    secret_key: SecretStr | None = None
    # Unset: links follow the address `lyceum serve` listens on (see `base_url`).
    public_base_url: AnyHttpUrl | None = None
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_request_body_bytes: int = Field(default=12 * 1024 * 1024, ge=1024)

    lyceum_data_dir: Path = Path("./.lyceum")
    database_url: str | None = None
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    # Seconds a request may wait for a database connection; past it, 503 with
    # Retry-After. 15 s: twice the slowest 500-request burst measured on a shared 2-core
    # machine (bench/assessments.py), and under the usual 30-60 s client and proxy
    # timeouts, so a refused client hears so before it gives up.
    db_pool_timeout: float = Field(default=15.0, gt=0, le=300)
    redis_url: str | None = None
    # A bearer token Prometheus must send to scrape /metrics. Unset: /metrics is open in
    # development and test, and answers 404 in production.
    metrics_token: SecretStr | None = None

    access_token_expire_minutes: int = Field(default=30, ge=1, le=24 * 60)
    refresh_token_expire_days: int = Field(default=7, ge=1, le=365)
    jwt_issuer: str = "lyceum"
    jwt_audience: str = "lyceum-api"
    # Failed sign-ins (a success clears them) per client IP and email, and per account
    # from anywhere (with the wrong passwords given to change it, disable MFA or delete
    # the account); past either, even the right password waits.
    login_rate_limit: str = "5/15 minutes"
    login_account_rate_limit: str = "20/hour"
    # Registrations per client IP.
    registration_rate_limit: str = "20/hour"
    # Account mails a client can trigger (verification resends, password resets): per
    # recipient, and per client IP.
    account_mail_rate_limit: str = "3/hour"
    account_mail_ip_rate_limit: str = "20/hour"
    avatar_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)

    ai_provider: AIProvider = AIProvider.claude
    ai_api_key: SecretStr | None = None
    ai_model: str | None = None
    ai_base_url: AnyHttpUrl | None = None
    ai_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    ai_max_retries: int = Field(default=3, ge=0, le=10)
    ai_input_cost_per_million: float = Field(default=3.0, ge=0)
    ai_output_cost_per_million: float = Field(default=15.0, ge=0)
    tutor_rate_limit: str = "20/hour"
    tutor_max_message_chars: int = Field(default=4000, ge=10, le=100_000)
    tutor_cache_ttl_seconds: int = Field(default=3600, ge=0)
    tutor_history_tokens: int = Field(default=2000, ge=100, le=100_000)

    # Assessments
    # Essays of one assignment whose embeddings are at least this similar (cosine) to
    # another learner's are flagged to the instructors as near-duplicates.
    assessment_similarity_threshold: float = Field(default=0.95, gt=0, le=1)
    # A tutor question at least this similar (cosine) to a question of the learner's
    # open quiz attempt or to an unsubmitted assignment's prompt counts as graded work:
    # the tutor gives hints, not the answer.
    assessment_guard_similarity: float = Field(default=0.75, gt=0, le=1)
    # Slack after a quiz attempt's deadline for answers already on their way; past it,
    # answers are refused and the attempt is graded with what was saved.
    assessment_deadline_grace_seconds: int = Field(default=2, ge=0, le=300)
    # The largest DOCX or PDF a learner may upload as an essay.
    essay_upload_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)

    # Chat ---------------------------------------------------------------------------
    # Longest chat message, in characters (after trimming surrounding whitespace).
    chat_message_max_chars: int = Field(default=2000, ge=1, le=100_000)
    # Sends per user, counted across every replica (moving window in Redis if set).
    chat_rate_limit: str = "10/10 seconds"
    # Comma-separated words a message may not contain (whole words, any case).
    chat_blocked_words: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # A connection's presence entry lives this long unless its process refreshes it,
    # so a crashed replica's users drop out of "online" on their own.
    chat_presence_ttl_seconds: int = Field(default=60, ge=10, le=3600)
    # Sign-outs, deactivations and unenrollments reach open sockets at once through an
    # announcement; every this many seconds each process also re-checks its sockets
    # against the database, in case an announcement was missed.
    chat_access_check_seconds: float = Field(default=15, gt=0, le=600)

    @field_validator("chat_blocked_words", mode="before")
    @classmethod
    def _split_blocked_words(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            return [str(word).strip().casefold() for word in value if str(word).strip()]
        return value

    @field_validator("chat_rate_limit")
    @classmethod
    def _check_chat_rate(cls, value: str) -> str:
        return cls._check_rate(value)

    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout_seconds: float = Field(default=20.0, gt=0)
    mail_from: str = "Lyceum <no-reply@lyceum.local>"

    storage_backend: StorageBackend = StorageBackend.local
    storage_local_path: Path | None = None
    storage_s3_bucket: str | None = None
    storage_s3_endpoint_url: AnyHttpUrl | None = None
    storage_s3_region: str = "us-east-1"
    storage_s3_access_key_id: str | None = None
    storage_s3_secret_access_key: SecretStr | None = None

    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)

    # Untrusted uploads cost bounded work ----------------------------------------------
    # Uploads per user (moving windows, atomic across replicas with Redis): essay files,
    # course files (and re-index requests), and avatar and cover images.
    essay_upload_rate_limit: str = "10/hour"
    file_upload_rate_limit: str = "60/hour"
    image_upload_rate_limit: str = "20/hour"
    # Downloads of a user's own data (GET /me/export) per user: each reads every domain
    # and builds a zip with the user's files.
    data_export_rate_limit: str = "5/hour"
    # Password hashing (argon2id, one thread per core) admits at most this many sign-ins,
    # registrations and password changes waiting for a thread; beyond that, and for a
    # request that has waited PASSWORD_HASH_MAX_WAIT_SECONDS, 503 with Retry-After
    # (kit.security.HashingGate).
    password_hash_queue: int = Field(
        default=64,
        ge=0,
        le=10_000,
        description="Most password hashes that may wait for a hashing thread (503 beyond).",
    )
    password_hash_max_wait_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="A password hash that has waited this long for a thread is dropped (503).",
    )
    # The most pixels an uploaded image (avatar, cover, course-file image) may decode to,
    # checked from its header before decoding. At most kit.images.PIXEL_CEILING.
    image_max_pixels: int = Field(default=25_000_000, ge=10_000, le=100_000_000)
    # Parsers of uploaded files and images run in at most this many child processes,
    # each limited to this much address space (kit.sandbox).
    sandbox_processes: int = Field(default=2, ge=1, le=64)
    sandbox_memory_mb: int = Field(default=1024, ge=256, le=65_536)
    # Reading one course file (in the indexing job): time, and pages read at most (the
    # pages after them are not indexed, and the file says so).
    extraction_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    extraction_max_pages: int = Field(default=2000, ge=1, le=100_000)
    # Passages indexed per course file at most; a longer file is indexed up to here and
    # its `notice` says how far (the tutor and search see only that part).
    ingest_max_chunks: int = Field(default=3000, ge=1, le=1_000_000)
    # Essay files are read while the learner waits, under tighter budgets: more pages, or
    # a file that takes longer to read, is refused (413 / 422).
    essay_max_pages: int = Field(default=100, ge=1, le=10_000)
    essay_extraction_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    download_url_ttl_seconds: int = Field(default=300, ge=10, le=7 * 24 * 3600)
    clamd_url: str | None = Field(default=None, pattern=r"^(tcp://[^/:]+:\d{1,5}|unix:///.+)$")

    cache_ttl_seconds: int = Field(default=60, ge=1)

    embedded_worker: bool = True
    # Embedded mode runs the bulk queues (indexing, AI scoring) in a child process of
    # `lyceum serve` at a lower CPU priority (`process`), so embedding a textbook never
    # holds up requests, or in the serving process itself (`inline`: one process, one
    # copy of the embedding model, for small machines).
    embedded_bulk_worker: Literal["process", "inline"] = "process"
    worker_concurrency: int = Field(default=4, ge=1, le=100)
    worker_metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port on which `lyceum worker` serves Prometheus metrics at /metrics. "
        "It listens on all interfaces (0.0.0.0) and has NO token: keep the port on a "
        "private network that only Prometheus reaches, never published; unset: not served.",
    )
    # SIGTERM (a rolling restart, a scale-down) starts a drain: no new connections or
    # jobs are taken, and in-flight requests, streamed tutor answers and running jobs get
    # this many seconds to finish; what still runs then is cut (an unfinished job goes
    # back to its queue) and the process exits 0. Keep Kubernetes'
    # terminationGracePeriodSeconds above it (docs/operations.md).
    shutdown_grace_seconds: int = Field(default=30, ge=1, le=600)
    # How long `serve` keeps an idle HTTP keep-alive connection open. Keep it above the
    # idle timeout of the load balancer or proxy in front (60 s for an AWS ALB and for
    # nginx's upstream keepalive_timeout): a server that closes an idle connection just
    # as the proxy reuses it makes the proxy answer 502, and a client its request
    # fails. uvicorn's own default is 5 s.
    http_keep_alive_seconds: int = Field(default=75, ge=1, le=3600)
    # Retention of the periodic cleanups (system/tasks.py, queue `maintenance`): finished
    # jobs; ended (expired or revoked) logins with their refresh tokens; used or expired
    # one-time tokens (verification, password reset); the mail delivery log; and how old
    # a stored avatar, cover or course file with no row must be before it is deleted.
    job_retention_days: int = Field(default=14, ge=1, le=3650)
    refresh_token_retention_days: int = Field(default=30, ge=1, le=3650)
    one_time_token_retention_days: int = Field(default=7, ge=1, le=3650)
    mail_log_retention_days: int = Field(default=90, ge=1, le=3650)
    orphan_upload_grace_hours: int = Field(default=24, ge=1, le=24 * 365)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] | None = None
    sentry_dsn: SecretStr | None = None
    # OpenTelemetry tracing (kit.tracing): on when the OTLP endpoint is set. The base URL
    # of an OTLP/HTTP receiver (a collector, Jaeger, Tempo): spans go to <it>/v1/traces.
    otel_exporter_otlp_endpoint: AnyHttpUrl | None = Field(
        default=None,
        description="OTLP/HTTP base URL (spans to /v1/traces); unset: tracing is off",
    )
    # Unset: `lyceum-api` for `lyceum serve`, `lyceum-worker` for `lyceum worker`.
    otel_service_name: str | None = Field(
        default=None, min_length=1, max_length=100, description="service.name of the spans"
    )
    # Share of new traces recorded; a request arriving with a sampled traceparent is
    # recorded whatever this says (parent-based), and the jobs it defers with it.
    otel_sample_ratio: float = Field(
        default=1.0, ge=0, le=1, description="share of new traces recorded (parent-based)"
    )

    # Outgoing webhooks. Endpoints on loopback, private and link-local addresses are
    # refused unless this allows them (a receiver on the same network; the tests).
    webhook_allow_private_networks: bool = False
    # Longest one delivery attempt may take (connect, send, read the answer).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # An endpoint whose deliveries fail continuously for this long is disabled and the
    # admins are mailed.
    webhook_disable_after_seconds: int = Field(default=86_400, ge=0)
    # Delivery log rows and recorded public events older than this many days are deleted
    # by a daily job.
    webhook_delivery_retention_days: int = Field(default=30, ge=1, le=3650)
    # Notifications ------------------------------------------------------------------
    # Read notifications, and finished delivery log rows, older than this many days are
    # deleted by a daily job (unread ones stay).
    notification_retention_days: int = Field(default=90, ge=1, le=3650)
    # Recipients per channel job when a notification fans out (an announcement to
    # 10,000 learners queues 10,000 / this many mail jobs).
    notification_batch_size: int = Field(default=250, ge=1, le=5000)
    # Notification channels: SMS, Web Push, mobile push -------------------------------
    # Each is on when configured; unconfigured, its sends are skipped and logged.
    # SMS through Twilio: the account, and who the messages come from (a number in
    # E.164, or a Messaging Service, which wins when both are set).
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = Field(default=None, pattern=r"^\+[1-9]\d{1,14}$")
    twilio_messaging_service_sid: str | None = None
    # Where the Twilio SDK sends its requests (tests point it at a fake Twilio).
    twilio_api_base_url: AnyHttpUrl = AnyHttpUrl("https://api.twilio.com")
    # Verification codes sent to a phone, per user.
    phone_verification_rate_limit: str = "3/hour"
    # Web Push: the VAPID private key (base64url, as `vapid --gen` or any Web Push
    # library prints it; the public key is derived from it) and the contact the push
    # services see. Unset outside production: a key is generated once into the data dir.
    vapid_private_key: SecretStr | None = None
    vapid_subject: str | None = Field(default=None, pattern=r"^(mailto:.+|https://.+)$")
    # Mobile push through Firebase Cloud Messaging (HTTP v1): a service-account JSON
    # file (its `token_uri` is where access tokens come from), and the API's address.
    fcm_service_account_file: Path | None = None
    fcm_api_base_url: AnyHttpUrl = AnyHttpUrl("https://fcm.googleapis.com")
    # Scheduled learner messages: how long a sent digest, due-soon reminder or
    # inactivity nudge is remembered (it must outlive the week a nudge guards).
    reminders_retention_days: int = Field(default=90, ge=14, le=3650)
    # Paymob (Egypt, UAE, KSA, Oman, Pakistan) --------------------------------------
    # From the Paymob dashboard (Developers): the secret and public keys (Unified
    # Checkout intentions), the HMAC secret (transaction callbacks are signed with it),
    # the API key (traded for the auth token the transaction inquiry takes), and the
    # integration ids of the payment methods offered. All set: Paymob is on.
    paymob_secret_key: SecretStr | None = None
    paymob_public_key: str | None = None
    paymob_hmac_secret: SecretStr | None = None
    paymob_api_key: SecretStr | None = None
    paymob_integration_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # The account's regional host (https://uae.paymob.com, https://ksa.paymob.com, ...).
    paymob_base_url: AnyHttpUrl = AnyHttpUrl("https://accept.paymob.com")
    paymob_currencies: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["EGP"])

    @field_validator("paymob_integration_ids", "paymob_currencies", mode="before")
    @classmethod
    def _split_paymob_lists(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("paymob_currencies")
    @classmethod
    def _upper_paymob_currencies(cls, value: list[str]) -> list[str]:
        return [code.upper() for code in value]

    # Payments through Stripe (Checkout Sessions): on when both keys are set. The
    # webhook signing secret is the endpoint's `whsec_...`, shown where the endpoint is
    # registered in the Dashboard.
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    # Where the Stripe SDK sends its requests (tests point it at a fake Stripe).
    stripe_api_base: AnyHttpUrl = AnyHttpUrl("https://api.stripe.com")
    # Comma-separated ISO 4217 codes Stripe may charge in; empty: any it can take.
    stripe_currencies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("stripe_currencies", mode="before")
    @classmethod
    def _split_stripe_currencies(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            return [str(code).strip().upper() for code in value if str(code).strip()]
        return value

    # Receipts: the seller they name (the school's legal entity), its postal address
    # (lines separated by newlines) and tax registration number, printed when set.
    receipt_seller_name: str = Field(default="Lyceum", min_length=1, max_length=200)
    receipt_seller_address: str | None = Field(default=None, max_length=1000)
    receipt_tax_id: str | None = Field(default=None, max_length=100)
    # Analytics reports: a course's active learner with no activity in it for this many
    # days is on its at-risk list (reason `inactive`).
    at_risk_inactive_days: int = Field(default=14, ge=1, le=365)

    # Paid courses -------------------------------------------------------------------
    # Payment providers offered, in order of preference: a checkout that names none goes
    # to the first that charges in the course's currency. Unset: the built-in `sandbox`
    # outside production (refused in production), nothing in production.
    payment_providers: Annotated[list[str], NoDecode] | None = None
    # How long a hosted checkout stays payable.
    checkout_expiry_minutes: int = Field(default=60, ge=5, le=24 * 60)
    # Orders still pending this long are asked about at their provider (a lost webhook
    # still ends in an enrollment).
    payment_reconcile_after_minutes: int = Field(default=15, ge=1, le=7 * 24 * 60)
    # Tax included in every price (0: none), stored on each order and named on receipts.
    tax_rate_percent: Decimal = Field(default=Decimal(0), ge=0, le=100, decimal_places=2)
    tax_name: str = Field(default="VAT", min_length=1, max_length=40)
    # Whether a course's instructors may refund its orders (admins always may).
    refunds_by_instructors: bool = False
    # Whether a full refund ends the learner's enrollment.
    refund_ends_access: bool = True
    # Where the buyer's browser lands after paying or giving up; `{order_id}` is replaced
    # by the order's id. Unset: small Lyceum pages.
    checkout_success_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    checkout_cancel_url: str | None = Field(default=None, pattern=r"^https?://\S+$")

    # Recommendations (README "Recommendations") -----------------------------------------
    # Neighbours stored per course in each model version.
    recommendations_neighbours: int = Field(default=50, ge=1, le=500)
    # The blend: collaborative (item kNN), content (MiniLM cosine) and popularity weights,
    # tuned by bench/recommendations.py on a validation split.
    recommendations_collaborative_weight: float = Field(default=1.0, ge=0, le=100)
    recommendations_content_weight: float = Field(default=0.1, ge=0, le=100)
    recommendations_popularity_weight: float = Field(default=0.2, ge=0, le=100)
    # Courses priced above this (in the currency's minor unit) are never recommended;
    # unset: no cap.
    recommendations_max_price_cents: int | None = Field(default=None, ge=0)
    # Complete model versions kept (the newest is read; older ones are pruned by a rebuild).
    recommendations_keep_versions: int = Field(default=2, ge=1, le=100)

    @field_validator("payment_providers", mode="before")
    @classmethod
    def _split_providers(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            names = [str(name).strip().lower() for name in value if str(name).strip()]
            known = {"sandbox", "stripe", "paymob", "myfatoorah"}
            unknown = [name for name in names if name not in known]
            if unknown:
                raise ValueError(
                    f"unknown provider(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
                )
            return list(dict.fromkeys(names))
        return value

    def enabled_payment_providers(self) -> list[str]:
        """PAYMENT_PROVIDERS, or its default: the sandbox outside production."""
        if self.payment_providers is not None:
            return list(self.payment_providers)
        return [] if self.is_production else ["sandbox"]

    # Payments: MyFatoorah (API v2) -------------------------------------------------
    # On when MYFATOORAH_API_KEY and MYFATOORAH_WEBHOOK_SECRET are set: the API token
    # from the portal (Integration Settings > API Key) and the webhook secret key
    # (Integration Settings > Webhook Settings). The base URL is the account's:
    # https://api.myfatoorah.com (Kuwait, Bahrain, Jordan, Oman),
    # https://api-sa.myfatoorah.com (Saudi Arabia), https://api-ae.myfatoorah.com (UAE),
    # https://api-qa.myfatoorah.com (Qatar), https://api-eg.myfatoorah.com (Egypt),
    # https://apitest.myfatoorah.com (the test environment). The currencies an invoice
    # may be displayed (charged) in.
    myfatoorah_api_key: SecretStr | None = None
    myfatoorah_webhook_secret: SecretStr | None = None
    myfatoorah_base_url: AnyHttpUrl = AnyHttpUrl("https://api.myfatoorah.com")
    myfatoorah_currencies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["KWD", "SAR", "AED", "QAR", "BHD", "OMR", "JOD", "EGP"]
    )

    # xAPI: forwarding learning events to an external Learning Record Store --------
    # The LRS's xAPI endpoint (statements are POSTed to `{XAPI_LRS_URL}/statements`);
    # unset: nothing is forwarded (`GET /analytics/xapi/statements` still serves them).
    # HTTP Basic credentials of the LRS's key (username and secret), when it asks.
    xapi_lrs_url: AnyHttpUrl | None = None
    xapi_lrs_username: str | None = None
    xapi_lrs_password: SecretStr | None = None
    # Statements per POST to the LRS.
    xapi_forward_batch: int = Field(default=200, ge=1, le=2000)

    @field_validator("xapi_lrs_password")
    @classmethod
    def _password_needs_a_username(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if value is not None and not info.data.get("xapi_lrs_username"):
            raise ValueError("needs XAPI_LRS_USERNAME (HTTP Basic sends both)")
        return value

    # Learning analytics: event ingest --------------------------------------------
    # Events one POST /analytics/events may carry (at most 500).
    analytics_max_batch_events: int = Field(default=500, ge=1, le=500)
    # How far ahead of the server's clock an event's timestamp may be (clock skew).
    analytics_max_future_skew_seconds: int = Field(default=300, ge=0, le=24 * 60 * 60)
    # How old an event may be when it is posted (an app that was offline sends late).
    analytics_max_event_age_days: int = Field(default=30, ge=1, le=365)
    # Monthly partitions of the raw events made this many months ahead.
    analytics_partitions_ahead: int = Field(default=3, ge=1, le=24)
    # Raw events are kept this many months (whole months older are dropped); the
    # rollups keep their counts.
    analytics_retention_months: int = Field(default=24, ge=1, le=120)
    # Whether each ingest asks for a rollup run right away (else the minute's run).
    analytics_rollup_after_ingest: bool = True

    @model_validator(mode="after")
    def _check_analytics_retention(self) -> Settings:
        if self.analytics_max_event_age_days > 28 * self.analytics_retention_months:
            raise ValueError(
                "ANALYTICS_MAX_EVENT_AGE_DAYS: must be within ANALYTICS_RETENTION_MONTHS "
                "(28 days a month), or events could be posted for dropped months"
            )
        return self

    # The address this process serves on (set by `lyceum serve`), not a setting.
    _served_url: str | None = PrivateAttr(default=None)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("myfatoorah_currencies", mode="before")
    @classmethod
    def _split_myfatoorah_currencies(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            codes = [str(code).strip().upper() for code in value if str(code).strip()]
            from lyceum.payments.money import is_currency

            unknown = [code for code in codes if not is_currency(code)]
            if unknown:
                raise ValueError(f"not ISO 4217 currency codes: {', '.join(unknown)}")
            return codes
        return value

    @field_validator(
        "login_rate_limit",
        "login_account_rate_limit",
        "registration_rate_limit",
        "account_mail_rate_limit",
        "account_mail_ip_rate_limit",
        "tutor_rate_limit",
        "essay_upload_rate_limit",
        "file_upload_rate_limit",
        "image_upload_rate_limit",
        "data_export_rate_limit",
        "phone_verification_rate_limit",
    )
    @classmethod
    def _check_rate(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError("must look like '5/15 minutes' or '20/hour'") from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @model_validator(mode="after")
    def _check_production(self) -> Settings:
        if self.environment is Environment.production:
            key = self.secret_key.get_secret_value() if self.secret_key else ""
            if not key:
                raise ValueError(
                    f"SECRET_KEY: must be set when ENVIRONMENT=production; generate one "
                    f"with {GENERATE_SECRET}"
                )
            if weakness := secret_weakness(key, MIN_SECRET_KEY_LENGTH):
                raise ValueError(
                    f"SECRET_KEY: {weakness}; ENVIRONMENT=production needs a generated "
                    f"key, e.g. from {GENERATE_SECRET}"
                )
            if self.public_base_url is None:
                raise ValueError(
                    "PUBLIC_BASE_URL: must be set when ENVIRONMENT=production, to the "
                    "address users reach Lyceum at (e.g. https://learn.example.org); it "
                    "is the base of the links in mails, signed downloads and certificates"
                )
        if self.metrics_token is not None:
            token = self.metrics_token.get_secret_value()
            if self.environment is Environment.production:
                weakness = secret_weakness(token, MIN_METRICS_TOKEN_LENGTH)
            elif len(token) < MIN_METRICS_TOKEN_LENGTH:
                weakness = f"must be at least {MIN_METRICS_TOKEN_LENGTH} characters"
            else:
                weakness = None
            if weakness:
                raise ValueError(f"METRICS_TOKEN: {weakness}; generate one with {GENERATE_SECRET}")
        if self.is_production and "sandbox" in (self.payment_providers or []):
            raise ValueError(
                "PAYMENT_PROVIDERS: the sandbox provider takes no money and is refused "
                "when ENVIRONMENT=production"
            )
        if self.storage_backend is StorageBackend.s3 and not self.storage_s3_bucket:
            raise ValueError("STORAGE_S3_BUCKET: required when STORAGE_BACKEND=s3")
        if self.max_request_body_bytes <= self.max_upload_bytes:
            raise ValueError(
                "MAX_REQUEST_BODY_BYTES: must be above MAX_UPLOAD_BYTES (an upload also "
                "carries its multipart envelope)"
            )
        return self

    # Derived values -----------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.lyceum_data_dir.expanduser().resolve()

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def is_production(self) -> bool:
        return self.environment == Environment.production

    @property
    def effective_log_format(self) -> str:
        if self.log_format:
            return self.log_format
        return "json" if self.is_production else "console"

    @property
    def served_url_file(self) -> Path:
        return self.data_dir / SERVED_URL_FILE

    def record_served_url(self, url: str) -> None:
        """Called by `lyceum serve` once it listens: with PUBLIC_BASE_URL unset, links of
        this process follow `url`, and so do those of other processes on the same data
        dir (a standalone worker), through a file. Raises OSError if the data dir is not
        writable."""
        self._served_url = url.rstrip("/")
        if self.public_base_url is not None:
            return
        path = self.served_url_file
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(self._served_url + "\n", encoding="utf-8")
        temporary.replace(path)

    def base_url(self) -> str:
        """The base of every absolute link Lyceum builds (mails, signed downloads,
        avatars, certificates and their QR codes), without a trailing slash:
        PUBLIC_BASE_URL; unset, the address `lyceum serve` listens on (this process's,
        or the one it recorded in the data dir); before any serve, FALLBACK_BASE_URL."""
        if self.public_base_url is not None:
            return str(self.public_base_url).rstrip("/")
        if self._served_url is not None:
            return self._served_url
        try:
            recorded = self.served_url_file.read_text(encoding="utf-8").strip()
        except OSError:
            recorded = ""
        return recorded.rstrip("/") or FALLBACK_BASE_URL

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def ai_offline(self) -> bool:
        """No provider to call: the tutor answers from the course material alone. An
        OpenAI-compatible server (Ollama, vLLM) may need no key, only AI_BASE_URL."""
        if self.ai_provider is AIProvider.offline:
            return True
        if self.ai_provider is AIProvider.openai_compatible:
            return self.ai_base_url is None
        return self.ai_api_key is None

    @property
    def sms_configured(self) -> bool:
        return bool(
            self.twilio_account_sid
            and self.twilio_auth_token
            and (self.twilio_from_number or self.twilio_messaging_service_sid)
        )

    @property
    def webpush_configured(self) -> bool:
        """Production needs its own VAPID key and subject; elsewhere a key is generated."""
        if self.is_production:
            return self.vapid_private_key is not None and self.vapid_subject is not None
        return True

    @property
    def fcm_configured(self) -> bool:
        return self.fcm_service_account_file is not None

    def secret_key_value(self) -> str:
        """The signing key. In development one is generated once and kept in the data dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / DEV_SECRET_FILE
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key, encoding="utf-8")
        path.chmod(0o600)
        self.secret_key = SecretStr(key)
        return key


def describe_validation_error(error: ValidationError) -> str:
    """One line per bad variable, named the way the user sets it."""
    lines = []
    for item in error.errors():
        location = "_".join(str(part) for part in item["loc"]).upper()
        message = item["msg"]
        if not location and ":" in message:
            location, _, message = message.removeprefix("Value error, ").partition(":")
        lines.append(f"{location or 'settings'}: {message.removeprefix('Value error, ').strip()}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
