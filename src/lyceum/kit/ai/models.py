"""The model provider: Anthropic (Claude), OpenAI, or any OpenAI-compatible server
(vLLM, Ollama, llama.cpp), chosen by settings. Only the base URL differs between
production and the tests' fake provider. No domain knowledge: the essay scorer and the
catalog advisor build pydantic-ai agents on the model this returns, and the tutor
streams its answers through a copy of the same provider SDK client
(`streaming_client`) that sends over the SDK's aiohttp transport."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from lyceum.config import AIProvider, Settings

if TYPE_CHECKING:
    from pydantic_ai.models import Model

DEFAULT_MODELS = {
    AIProvider.claude: "claude-sonnet-5-5",
    AIProvider.openai: "gpt-6-luna",
    AIProvider.openai_compatible: "default",
}


@dataclass(frozen=True)
class ModelChoice:
    provider: str
    name: str
    model: Model = field(compare=False)
    # The provider SDK's client under `model` (AsyncAnthropic or AsyncOpenAI): one per
    # configuration and process, with its connection pool and retries.
    client: Any = field(default=None, compare=False)


def model_name(settings: Settings) -> str:
    return settings.ai_model or DEFAULT_MODELS.get(settings.ai_provider, "default")


@lru_cache(maxsize=4)
def _build(
    provider: AIProvider,
    name: str,
    api_key: str | None,
    base_url: str | None,
    timeout: float,
    retries: int,
) -> tuple[Model, Any]:
    """One model (and one HTTP client with its connection pool) per configuration and
    process. The SDK clients retry 429 and 5xx with exponential backoff, honouring
    Retry-After."""
    if provider is AIProvider.claude:
        from anthropic import AsyncAnthropic
        from pydantic_ai.models.anthropic import AnthropicModel
        from pydantic_ai.providers.anthropic import AnthropicProvider

        client = AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=retries
        )
        return AnthropicModel(name, provider=AnthropicProvider(anthropic_client=client)), client
    from openai import AsyncOpenAI
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    openai_client = AsyncOpenAI(
        api_key=api_key or "not-needed",
        base_url=base_url,
        timeout=timeout,
        max_retries=retries,
    )
    model = OpenAIChatModel(name, provider=OpenAIProvider(openai_client=openai_client))
    return model, openai_client


def choose_model(settings: Settings) -> ModelChoice:
    name = model_name(settings)
    key = settings.ai_api_key.get_secret_value() if settings.ai_api_key else None
    base = str(settings.ai_base_url).rstrip("/") if settings.ai_base_url else None
    model, client = _build(
        settings.ai_provider, name, key, base, settings.ai_timeout_seconds, settings.ai_max_retries
    )
    return ModelChoice(provider=settings.ai_provider.value, name=name, model=model, client=client)


# Streamed answers ---------------------------------------------------------------------
#
# The SDKs' default transport (httpx2 over httpcore2) costs 1.5-2x the CPU per
# streamed answer of their documented aiohttp transport (`DefaultAioHttpClient`, the
# `anthropic[aiohttp]` / `openai[aiohttp]` option): an anyio cancel scope and a
# timeout per read of the stream. bench/tutor_concurrency.py measures both. An aiohttp
# session belongs to the event loop it was first used on, so each loop gets its own
# copy of the client; `close_streaming_clients` closes the running loop's copies (the
# runtime's stop does, before the loop ends).

_STREAMING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, Any]] = (
    weakref.WeakKeyDictionary()
)


def streaming_client(choice: ModelChoice) -> Any:
    """`choice.client` (same key, base URL, timeout and retries) over the SDK's aiohttp
    transport, for the running event loop. Proxies from the environment are honoured
    as the default transport honours them."""
    loop = asyncio.get_running_loop()
    copies = _STREAMING.get(loop)
    if copies is None:
        copies = _STREAMING[loop] = {}
    client = copies.get(choice.client)
    if client is None:
        if choice.provider == AIProvider.claude.value:
            from anthropic import DefaultAioHttpClient
        else:
            from openai import DefaultAioHttpClient
        client = copies[choice.client] = choice.client.copy(http_client=DefaultAioHttpClient())
    return client


async def close_streaming_clients() -> None:
    """Close the running loop's streaming clients (their aiohttp sessions)."""
    copies = _STREAMING.pop(asyncio.get_running_loop(), None)
    for client in (copies or {}).values():
        await client.close()


__all__ = [
    "DEFAULT_MODELS",
    "ModelChoice",
    "choose_model",
    "close_streaming_clients",
    "model_name",
    "streaming_client",
]
