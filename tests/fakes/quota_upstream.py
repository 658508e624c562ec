"""A fake upstream that enforces quotas per key, as the real ones do, with their real formats.

    fake = await QuotaUpstream(rpm={"key-a": 2, "key-b": 4}, rpd={"gem-a": 1}).start()
    fake.base_url          # http://127.0.0.1:PORT/v1   (OpenAI chat completions)
    fake.root_url          # http://127.0.0.1:PORT      (Gemini generateContent under /v1beta)
    fake.served / fake.refused / fake.failed   # (key, route) of each answer, in order
    fake.fail_next(key, status)                # that key's next request answers `status`
    fake.exhaust(key, seconds)                 # the key is out of quota for that long (429s)

OpenAI-compatible chat (`POST /v1/chat/completions`, Bearer key): every answer carries
`x-ratelimit-{limit,remaining,reset}-requests` in OpenAI's format (the reset as "6s") or, with
`headers="anthropic"`, `anthropic-ratelimit-requests-*` (the reset as RFC 3339); a request over
the key's rpm (a sliding 60 s window) gets OpenAI's 429 body with those headers and Retry-After.

Gemini (`POST /v1beta/models/{model}:generateContent`, `x-goog-api-key`): a key over its rpd
gets Gemini's real 429: RESOURCE_EXHAUSTED with a QuotaFailure naming
`GenerateRequestsPerDayPerProjectPerModel-FreeTier` and a RetryInfo delay.

Quotas count only answered requests (a 429 or a scripted failure is not counted), which is
what OpenAI, Anthropic and Gemini do. Keys are recorded, never echoed in a body.
"""

from __future__ import annotations

import math
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

WINDOW_S = 60.0


class QuotaUpstream:
    def __init__(
        self,
        rpm: dict[str, int] | None = None,
        rpd: dict[str, int] | None = None,
        headers: str = "openai",
    ) -> None:
        self.rpm = rpm or {}
        self.rpd = rpd or {}
        self.header_format = headers
        self.served: list[tuple[str, str]] = []  # (key, route)
        self.refused: list[tuple[str, str]] = []  # 429s sent
        self.failed: list[tuple[str, int]] = []  # scripted failures sent
        self._minute: dict[str, deque[float]] = {}
        self._day: dict[str, int] = {}
        self._fail_next: dict[str, deque[int]] = {}
        self._out_until: dict[str, float] = {}
        self._runner: web.AppRunner | None = None
        self.root_url = ""

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    @property
    def calls(self) -> int:
        """Every request that reached this upstream."""
        return len(self.served) + len(self.refused) + len(self.failed)

    def fail_next(self, key: str, status: int) -> None:
        self._fail_next.setdefault(key, deque()).append(status)

    def exhaust(self, key: str, seconds: float) -> None:
        """The key's quota is spent elsewhere (another app sharing it): 429 until then."""
        self._out_until[key] = time.time() + seconds

    async def start(self) -> QuotaUpstream:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1beta/models/{target}", self._gemini)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.root_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- quota arithmetic -------------------------------------------------------------------------

    def _window(self, key: str, now: float) -> deque[float]:
        times = self._minute.setdefault(key, deque())
        while times and times[0] <= now - WINDOW_S:
            times.popleft()
        return times

    def _scripted(self, key: str) -> int | None:
        queued = self._fail_next.get(key)
        return queued.popleft() if queued else None

    # --- OpenAI-compatible chat -------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.Response:
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        body = await request.json()
        if (status := self._scripted(key)) is not None:
            self.failed.append((key, status))
            error = {"message": "The server had an error", "type": "server_error"}
            return web.json_response({"error": error}, status=status)
        now = time.time()
        limit = self.rpm.get(key)
        times = self._window(key, now)
        spent_until = self._out_until.get(key, 0.0)
        if spent_until > now or limit is not None and len(times) >= limit:
            self.refused.append((key, "chat"))
            limit = limit or 1
            reset = spent_until - now if spent_until > now else times[0] + WINDOW_S - now
            headers = self._rate_headers(limit, 0, reset, now)
            headers["retry-after"] = str(math.ceil(reset))
            error = {
                "message": f"Rate limit reached for requests. Limit {limit}, Used {limit}.",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
            return web.json_response({"error": error}, status=429, headers=headers)
        times.append(now)
        self.served.append((key, "chat"))
        headers = {}
        if limit is not None:
            reset = times[0] + WINDOW_S - now
            headers = self._rate_headers(limit, limit - len(times), reset, now)
        return web.json_response(_completion(body), headers=headers)

    def _rate_headers(
        self, limit: int, remaining: int, reset_s: float, now: float
    ) -> dict[str, str]:
        if self.header_format == "anthropic":
            at = datetime.fromtimestamp(now, UTC) + timedelta(seconds=reset_s)
            return {
                "anthropic-ratelimit-requests-limit": str(limit),
                "anthropic-ratelimit-requests-remaining": str(remaining),
                "anthropic-ratelimit-requests-reset": at.isoformat().replace("+00:00", "Z"),
            }
        return {
            "x-ratelimit-limit-requests": str(limit),
            "x-ratelimit-remaining-requests": str(remaining),
            "x-ratelimit-reset-requests": f"{reset_s:.3f}s",
        }

    # --- Gemini -----------------------------------------------------------------------------------

    async def _gemini(self, request: web.Request) -> web.Response:
        key = request.headers.get("x-goog-api-key", "")
        await request.read()
        limit = self.rpd.get(key)
        used = self._day.get(key, 0)
        if limit is not None and used >= limit:
            self.refused.append((key, "gemini"))
            return web.json_response(_gemini_per_day_429(limit), status=429)
        self._day[key] = used + 1
        self.served.append((key, "gemini"))
        return web.json_response(
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": "ok"}]},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": 3,
                    "candidatesTokenCount": 1,
                    "totalTokenCount": 4,
                },
                "modelVersion": "gemini-fake",
            }
        )


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-quota",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "unknown"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "ok"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def _gemini_per_day_429(limit: int) -> dict[str, Any]:
    """Gemini's answer when a free-tier daily quota is spent (as the API sends it)."""
    return {
        "error": {
            "code": 429,
            "message": (
                "You exceeded your current quota, please check your plan and billing details. "
                f"Quota exceeded for metric: generate_content_free_tier_requests, limit: {limit}"
            ),
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": (
                                "generativelanguage.googleapis.com/"
                                "generate_content_free_tier_requests"
                            ),
                            "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                            "quotaDimensions": {"location": "global", "model": "gemini-fake"},
                            "quotaValue": str(limit),
                        }
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "39s"},
            ],
        }
    }
