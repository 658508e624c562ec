"""The module-scoped gateways of this folder (module scope keeps the property-based tests fast:
hundreds of requests share one gateway).

    fuzz_gateway    a gateway in front of a fake upstream of every dialect (gateway_support.MODELS)
    shapes          a gateway whose providers of every dialect are one ShapeUpstream
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from fakes.anthropic_upstream import FakeAnthropic
from fakes.gemini_upstream import FakeGemini
from fakes.openai_upstream import FakeUpstream
from fakes.responses_upstream import FakeResponsesUpstream
from gateway_support import MODELS, FuzzGateway, Shapes, gateway_config, start_gateway
from upstream_shapes import ShapeUpstream


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FuzzGateway]:
    openai_fake = await FakeUpstream("openai").start()
    anthropic_fake = await FakeAnthropic().start()
    gemini_fake = await FakeGemini().start()
    responses_fake = await FakeResponsesUpstream().start()
    base_urls = {
        "openai_chat": openai_fake.base_url,
        "anthropic": anthropic_fake.base_url,
        "gemini": gemini_fake.base_url,
        "responses": responses_fake.base_url,
    }
    tmp = tmp_path_factory.mktemp("fuzz")
    app, base_url = await start_gateway(gateway_config(base_urls, tmp), tmp)
    session = aiohttp.ClientSession()
    yield FuzzGateway(base_url, session, app)
    await session.close()
    await app.stop(grace=1.0)
    for fake in (openai_fake, anthropic_fake, gemini_fake, responses_fake):
        await fake.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shapes(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shapes]:
    upstream = await ShapeUpstream().start()
    tmp = tmp_path_factory.mktemp("shapes")
    app, base_url = await start_gateway(
        gateway_config(dict.fromkeys(MODELS, upstream.base_url), tmp), tmp
    )
    async with aiohttp.ClientSession() as session:
        yield Shapes(base_url, upstream, session)
    await app.stop(grace=1.0)
    await upstream.stop()
