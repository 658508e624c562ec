"""Finding a named object literal in a JavaScript file and parsing it as JSON5.

The Worker's v1 `wrangler-config.js` is a program, not data: `const providerConfig = {…}`. We do
not run it. We find where the literal assigned to a name starts (`providerConfig = {` or, inside
another object, `providerConfig: {`), walk to its matching brace while skipping strings and
comments (a `}` inside a string or comment must not end it), and hand exactly that text to a real
JSON5 parser. Anything the parser refuses (a function call, a variable, a template string with
`${…}`) is an error naming the literal, never a guess.
"""

from __future__ import annotations

import json5

MAX_SOURCE_CHARS = 1_000_000  # a real config is a few kB; beyond this it is not one
MAX_NESTING = 64  # the parser recurses once per level; a real config nests four or five


class LiteralError(ValueError):
    """A literal is missing or cannot be parsed; the message says which and where."""


def find_literal(source: str, name: str) -> str | None:
    """The text of the object or string literal assigned to `name` (`name = …` or `name: …`),
    or None if there is none."""
    at = 0
    while (at := _next_name(source, name, at)) >= 0:
        after = _skip_blank(source, at + len(name))
        if after < len(source) and source[after] in "=:":
            start = _skip_blank(source, after + 1)
            if start < len(source) and source[start] == "{":
                return source[start : _literal_end(source, start, name)]
            if start < len(source) and source[start] in "'\"":
                return source[start : _skip_string_or_comment(source, start)]
        at += len(name)
    return None


def parse_literal(text: str, name: str) -> object:
    depth = _max_depth(text)
    if depth > MAX_NESTING:
        raise LiteralError(f"{name}: nested {depth} levels deep (at most {MAX_NESTING})")
    try:
        return json5.loads(text)
    except ValueError as exc:
        raise LiteralError(f"{name}: not a JSON5 literal: {_short(exc)}") from None
    except RecursionError:
        raise LiteralError(f"{name}: nested too deeply") from None


def _short(exc: Exception) -> str:
    """The parser's message without any quoted source text (it could hold a key)."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return message.split(" near ")[0][:200]


def _next_name(source: str, name: str, start: int) -> int:
    """Next index of `name` as a whole identifier outside strings and comments, or -1."""
    i = start
    while i < len(source):
        skipped = _skip_string_or_comment(source, i)
        if skipped != i:
            i = skipped
            continue
        if source.startswith(name, i) and _is_boundary(source, i - 1, i + len(name)):
            return i
        i += 1
    return -1


def _is_boundary(source: str, before: int, after: int) -> bool:
    def ident(j: int) -> bool:
        return 0 <= j < len(source) and (source[j].isalnum() or source[j] in "_$")

    return not ident(before) and not ident(after)


def _skip_blank(source: str, i: int) -> int:
    while i < len(source):
        skipped = _skip_string_or_comment(source, i, strings=False)
        if skipped != i:
            i = skipped
        elif source[i].isspace():
            i += 1
        else:
            break
    return i


def _skip_string_or_comment(source: str, i: int, strings: bool = True) -> int:
    """Index just past the string or comment starting at `i`; `i` itself if none starts there."""
    if source.startswith("//", i):
        end = source.find("\n", i)
        return len(source) if end < 0 else end + 1
    if source.startswith("/*", i):
        end = source.find("*/", i + 2)
        return len(source) if end < 0 else end + 2
    if strings and i < len(source) and source[i] in "'\"`":
        quote, j = source[i], i + 1
        while j < len(source) and source[j] != quote:
            j += 2 if source[j] == "\\" else 1
        return min(j + 1, len(source))
    return i


def _literal_end(source: str, start: int, name: str) -> int:
    depth, i = 0, start
    while i < len(source):
        skipped = _skip_string_or_comment(source, i)
        if skipped != i:
            i = skipped
            continue
        if source[i] in "{[":
            depth += 1
        elif source[i] in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise LiteralError(f"{name}: the object literal is never closed")


def _max_depth(text: str) -> int:
    depth = deepest = i = 0
    while i < len(text):
        skipped = _skip_string_or_comment(text, i)
        if skipped != i:
            i = skipped
            continue
        if text[i] in "{[":
            depth += 1
            deepest = max(deepest, depth)
        elif text[i] in "}]":
            depth -= 1
        i += 1
    return deepest
