"""Unit names: keys are named by their provider ("openai#0", "azure@gpt[1]#0"), endpoints by
provider and base URL. A leaf module: the providers name their targets' endpoints with it."""

from __future__ import annotations


def endpoint_name(provider: str, base_url: str) -> str:
    """The unit name of a provider endpoint: one for all the provider's keys. "://" (in every
    base URL, in no key name) tells endpoints from keys; an adapter without one (echo) answers
    in-process."""
    return f"{provider} {base_url.rstrip('/') or 'in-process://'}"


def is_endpoint(name: str) -> bool:
    return "://" in name
