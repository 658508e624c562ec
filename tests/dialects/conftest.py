"""Fakes of each upstream dialect, started per test: `openai_fake`, `anthropic_fake`, `gemini_fake`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fakes.anthropic_upstream import FakeAnthropic
from fakes.gemini_upstream import FakeGemini
from translation_support import ScriptedChat


@pytest.fixture
async def openai_fake() -> AsyncIterator[ScriptedChat]:
    fake = await ScriptedChat("openai").start()
    yield fake
    await fake.stop()


@pytest.fixture
async def anthropic_fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
async def gemini_fake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini() as fake:
        yield fake
