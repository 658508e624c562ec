"""The benchmark's minimal proxies (bench/baselines/) do their small work right, on every stack.

Each proxy is started as the bench starts it (`python -m bench.baselines.NAME --config FILE
--port N`, polled on /readyz) in front of the fake OpenAI upstream. They must rewrite the model,
send the upstream key, relay a whole answer byte for byte and a stream chunk by chunk as it
arrives; a number from a proxy that did less would be worthless. Stacks whose libraries are not
installed (the `bench` extra: granian, pyreqwest, uvicorn) are skipped with the reason.
Also the decision rule of bench/stacks.py on hand-made runs: no load generator, no numbers.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from fakes.openai_upstream import FakeUpstream, Reply
from fakes.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # `bench` is a folder of the repository, not an installed package

from bench import stacks  # noqa: E402

USER_TEXT = "relay me, please"


def write_bench_config(path: Path, upstream_base: str) -> Path:
    """The shape bench/gateway.py writes: JSON after a comment line."""
    provider = {"kind": "openai", "base_url": upstream_base, "api_keys": ["sk-upstream"]}
    model = {"providers": [{"provider": "up", "model": "upstream-model"}]}
    config = {"providers": {"up": provider}, "models": {"bench-model": model}}
    path.write_text("# generated\n" + json.dumps(config) + "\n")
    return path


async def wait_ready(process: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert process.poll() is None, f"proxy exited:\n{log.read_text()[-2000:]}"
            try:
                async with session.get(base + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"proxy not ready after 30 s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module", params=list(stacks.STACKS))
async def proxy(request, tmp_path_factory) -> AsyncIterator[tuple[str, FakeUpstream]]:
    """One proxy process per stack (starting one costs a second), shared by its tests."""
    stack = stacks.STACKS[request.param]
    if stack.missing():
        pytest.skip(f"{stack.name} needs {', '.join(stack.missing())}: pip install -e '.[bench]'")
    tmp_path = tmp_path_factory.mktemp(stack.name)
    async with FakeUpstream("fake") as fake:
        config = write_bench_config(tmp_path / "bench.yaml", fake.base_url)
        port = free_port()
        argv = stack.command.format(
            python=sys.executable, config=config, host="127.0.0.1", port=port
        ).split()
        log = tmp_path / "proxy.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(process, base, log)
            yield base, fake
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def chat_body(stream: bool) -> bytes:
    body: dict = {"model": "bench-model", "messages": [{"role": "user", "content": USER_TEXT}]}
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


async def test_baseline_relays_the_whole_answer_with_the_model_rewritten(proxy) -> None:
    base, fake = proxy
    async with (
        aiohttp.ClientSession() as session,
        session.post(base + "/v1/chat/completions", data=chat_body(False)) as response,
    ):
        assert response.status == 200
        assert response.headers["content-type"].startswith("application/json")
        answer = await response.json()
    assert answer["choices"][0]["message"]["content"] == fake.content_for(
        "upstream-model", USER_TEXT
    )
    sent = fake.requests[-1]
    assert (sent.model, sent.key, sent.stream) == ("upstream-model", "sk-upstream", False)


async def test_baseline_relays_a_stream_chunk_by_chunk_as_it_arrives(proxy) -> None:
    base, fake = proxy
    fake.default = Reply(token_delay=0.15)  # 5 tokens: the whole stream takes >= 0.6 s
    received: list[tuple[float, bytes]] = []
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(base + "/v1/chat/completions", data=chat_body(True)) as response,
        ):
            assert response.status == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            started = time.monotonic()
            async for chunk in response.content.iter_any():
                received.append((time.monotonic() - started, chunk))
    finally:
        fake.default = Reply()
    body = b"".join(chunk for _, chunk in received)
    events = [line[6:] for line in body.decode().splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(
        (choice["delta"].get("content") or "")
        for event in events[:-1]
        for choice in json.loads(event)["choices"]
    )
    assert text == fake.content_for("upstream-model", USER_TEXT)
    assert fake.requests[-1].model == "upstream-model"
    # the first token reached the client long before the upstream had finished
    assert received[0][0] < received[-1][0] - 0.4, [t for t, _ in received]


async def test_baseline_answers_an_unroutable_body_with_an_openai_error(proxy) -> None:
    base, fake = proxy
    before = len(fake.requests)
    async with aiohttp.ClientSession() as session:
        for body, status in ((b"not json", 400), (b'{"model":"other"}', 404)):
            async with session.post(base + "/v1/chat/completions", data=body) as response:
                assert response.status == status
                assert set((await response.json())["error"]) >= {"message", "type"}
    assert len(fake.requests) == before  # nothing reached the upstream


# --- the decision rule -------------------------------------------------------------------------


def run(round_: int, rps: float, errors: int = 0) -> dict:
    gateway = {"requests_per_s": rps, "errors_total": errors}
    gateway["extra"] = {"cpu_us_per_request": round(1e6 / rps, 1)}
    return {"round": round_, "gateway": gateway}


def runs(*rates: float, errors: int = 0) -> dict[str, list[dict]]:
    return {
        name: [run(i + 1, r, errors) for i, r in enumerate(rates)] for name in stacks.MEASURED_ON
    }


def test_rule_pairs_each_round_with_the_fastest_library_by_median() -> None:
    result = stacks.compare(
        {
            "own_stack": runs(1300, 2600, 1000),
            "granian_pyreqwest": runs(1000, 2000, 1000),
            "uvicorn_aiohttp": runs(900, 900, 900),
        }
    )
    for name in stacks.MEASURED_ON:
        assert result[name]["fastest_library"] == "granian_pyreqwest"
        assert [r["value"] for r in result[name]["per_round"]] == [1.3, 1.3, 1.0]
        assert result[name]["ratio"] == 1.3  # the median of the rounds, not 4900/4000
        # the cross-check: the cheapest library's CPU per request over ours (medians)
        assert result[name]["cheapest_library_by_cpu"] == "granian_pyreqwest"
        assert result[name]["cpu_ratio"] == round(1000.0 / 769.2, 3)
    assert result["decision"] == "keep"


def test_rule_leaves_out_a_stack_whose_runs_had_errors() -> None:
    result = stacks.compare(
        {
            "own_stack": runs(1000),
            "granian_pyreqwest": runs(5000, errors=3),  # fast because it answered wrongly
            "uvicorn_aiohttp": runs(900),
        }
    )
    assert result["chat_c50"]["fastest_library"] == "uvicorn_aiohttp"
    assert result["chat_c50"]["ratio"] == 1.111
    assert result["decision"] == "move"  # 11 % faster is not the 25 % the rule asks


def test_rule_has_no_decision_when_our_own_stack_failed() -> None:
    result = stacks.compare({"own_stack": runs(1000, errors=1), "uvicorn_aiohttp": runs(900)})
    assert result["chat_c50"]["ratio"] is None
    assert "decision" not in result
