"""Azure's URL forms against a fake Azure on 127.0.0.1, asserting the exact path and query.

The Worker documented two: a model entry whose `base_url` already names its deployment (it was
sent `/openai/deployments/D/openai/deployments/D/…`) and the `https://:name.azure.com/openai/
deployments/:model` template (it was sent the literal `:model`). Azure's newer `/openai/v1/` form
takes the model in the body and no api-version.
"""

from __future__ import annotations

import pytest
from fakes.openai_upstream import FakeUpstream

from apex_ai_proxy.config import ConfigError, parse_config

KEY = "azure-key-0123456789"
VERSION = "2024-10-21"


async def ask(gw, model: str) -> int:
    client = gw.openai()
    reply = await client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )
    return reply.status_code


def azure(base_url: str, **extra) -> dict:
    return {"kind": "azure", "base_url": base_url, "api_key": KEY, **extra}


async def test_classic_resource_url_puts_the_deployment_in_the_path(gateway, fake_upstream):
    fake: FakeUpstream = await fake_upstream("azure")
    config = {"providers": {"az": azure(fake.root_url, api_version=VERSION)}}
    config["models"] = {"gpt-4o-mini": {"providers": [{"provider": "az", "model": "dep-a"}]}}
    gw = await gateway(config)
    assert await ask(gw, "gpt-4o-mini") == 200
    (seen,) = fake.requests
    assert seen.path == "/openai/deployments/dep-a/chat/completions"
    assert seen.query == {"api-version": VERSION}
    assert seen.headers["api-key"] == KEY


async def test_an_entry_base_url_naming_its_deployment_is_used_as_is(gateway, fake_upstream):
    fake: FakeUpstream = await fake_upstream("azure")
    config = {"providers": {"azure": azure(fake.root_url, api_version=VERSION)}}
    entry = {
        "provider": "azure",
        "base_url": f"{fake.root_url}/openai/deployments/DeepSeek-R1",
        "model": "DeepSeek-R1",
    }
    config["models"] = {"DeepSeek-R1": {"providers": [entry]}}
    gw = await gateway(config)
    assert await ask(gw, "DeepSeek-R1") == 200
    (seen,) = fake.requests
    assert seen.path == "/openai/deployments/DeepSeek-R1/chat/completions"  # not twice
    assert seen.query == {"api-version": VERSION}


async def test_the_workers_name_model_template_is_filled(gateway, fake_upstream):
    fake: FakeUpstream = await fake_upstream("azure")
    template = f"http://:name:{fake.port}/openai/deployments/:model"
    config = {"providers": {"azure": azure(template, api_version=VERSION, resource="127.0.0.1")}}
    config["models"] = {"gpt-4o-mini": {"providers": [{"provider": "azure"}]}}
    gw = await gateway(config)
    assert await ask(gw, "gpt-4o-mini") == 200
    (seen,) = fake.requests
    assert seen.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert seen.query == {"api-version": VERSION}


async def test_the_v1_form_takes_the_model_in_the_body_and_no_api_version(gateway, fake_upstream):
    fake: FakeUpstream = await fake_upstream("azure", prefix="/openai/v1")
    config = {"providers": {"azure": azure(fake.root_url + "/openai/v1/")}}  # no api_version
    config["models"] = {"mini": {"providers": [{"provider": "azure", "model": "gpt-4o-mini"}]}}
    gw = await gateway(config)
    assert await ask(gw, "mini") == 200
    (seen,) = fake.requests
    assert seen.path == "/openai/v1/chat/completions"
    assert seen.query == {}
    assert seen.body["model"] == "gpt-4o-mini"
    assert seen.headers["api-key"] == KEY


def test_api_version_is_required_except_for_the_v1_form() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"providers": {"az": azure("https://r.openai.azure.com")}}, {})
    assert any("providers.az.api_version" in p for p in err.value.problems)
    parse_config({"providers": {"az": azure("https://r.openai.azure.com/openai/v1")}}, {})


def test_a_name_template_without_a_resource_is_a_config_problem() -> None:
    url = "https://:name.azure.com/openai/deployments/:model"
    with pytest.raises(ConfigError) as err:
        parse_config({"providers": {"az": azure(url, api_version=VERSION)}}, {})
    assert "providers.az.resource: required when a base_url contains ':name'" in (
        err.value.problems
    )
