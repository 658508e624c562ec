"""One request lifecycle: only `lifecycle.py` creates a RequestContext or builds an endpoint's
error response (context, auth, error rendering and record live in one place, issue 12).

A new endpoint that spells the lifecycle out again, instead of handing its `handle(request,
ctx)` to `lifecycle.endpoint`, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import apex_ai_proxy

ROOT = Path(apex_ai_proxy.__file__).parent
LIFECYCLE = ROOT / "lifecycle.py"
PATTERNS = {
    "RequestContext.new(": re.compile(r"\bRequestContext\.new\("),
    "RequestContext(": re.compile(r"(?<!class )\bRequestContext\("),
    "error_response(": re.compile(r"\berror_response\("),
}


def offences(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if path == root / "lifecycle.py":
            continue
        relative = path.relative_to(root).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(pattern.search(line) for pattern in PATTERNS.values()):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_only_the_lifecycle_creates_contexts_and_error_responses():
    assert offences(ROOT) == []


def test_the_lifecycle_does_both():
    """The guard looks for the names the lifecycle really uses: if they were renamed, the test
    above would pass for nothing."""
    text = LIFECYCLE.read_text()
    assert PATTERNS["RequestContext.new("].search(text)
    assert PATTERNS["error_response("].search(text)


def test_the_guard_finds_a_handler_spelling_the_lifecycle_out(tmp_path):
    (tmp_path / "endpoints").mkdir()
    (tmp_path / "endpoints" / "extra.py").write_text(
        "async def handle(request):\n"
        "    ctx = RequestContext.new('/x', 'openai_chat')\n"
        "    return lifecycle.error_response('openai_chat', err, ctx)\n"
    )
    assert offences(tmp_path) == [
        "endpoints/extra.py:2: ctx = RequestContext.new('/x', 'openai_chat')",
        "endpoints/extra.py:3: return lifecycle.error_response('openai_chat', err, ctx)",
    ]
