"""Stored responses for the OpenAI Responses API (`/v1/responses`, `previous_response_id`).

One small async interface, `ResponseStore`, with one module per backend:
`sqlite_responses.py` (embedded default, one file shared by every worker process) and
`redis_responses.py` (shared by many replicas). `open_store.open_store(config)` picks one
(in its own module: the backends import this interface, so the factory cannot live here).

Scope: each record names its `owner`, a fingerprint of the gateway token that created it
(`auth.token_owner`, "tok_…"; None when the gateway runs without tokens), never the token, and
not its position name ("token-1"), which would hand the records to another token once tokens
are removed or reordered. The scoped reads (`get_visible`, `delete_visible`, `conversation`)
treat another owner's record as missing, so a client cannot even learn that an id exists;
`EVERY_OWNER` sees all (the hook for admin tokens). A record written before owners existed has
owner None: visible only to a gateway without tokens. A record owned by a position name (the
first scoped builds, never released) matches no token: invisible while tokens are on.

A record never holds a secret. `StoredResponse` names its upstream by reference only (provider
name, key *name*, upstream response id); there is no field for an API key, and a reference that
looks like a key is refused at construction.

Errors, all raised by the store or its helpers:

    ResponseStoreError
     ├── ResponseStoreUnavailableError   backend unreachable, locked past its timeout, or closed
     ├── ResponseRecordError             record cannot be stored (also a ValueError): id mismatch,
     │                                   a secret-looking reference, a value JSON cannot hold
     └── ConversationError               the previous_response_id chain cannot be rebuilt
          ├── ResponseNotFoundError      a response of the chain is missing or expired
          ├── ConversationCycleError     the chain loops back on itself
          └── ConversationTooDeepError   the chain is longer than max_depth
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, fields
from typing import Any

import orjson

#: Longest previous_response_id chain `conversation()` walks before giving up.
MAX_CONVERSATION_DEPTH = 1000

#: Serialized format version, written with every record. 2: records name their `owner`.
RECORD_FORMAT = 2

# Prefixes of API keys and auth headers of the providers we speak to. A reference field that
# starts with one of these is almost certainly a secret passed by mistake instead of a name.
_SECRET_PREFIXES = ("sk-", "sk_", "AIza", "gsk_", "xai-", "hf_", "r8_", "Bearer ", "bearer ")
_REFERENCE_FIELDS = ("provider", "key_name", "upstream_response_id", "owner")


class _EveryOwner:
    def __repr__(self) -> str:
        return "EVERY_OWNER"


#: Pass as `owner` to see every record, whoever created it. Nothing passes it yet: it is the
#: hook for admin tokens (a later issue adds `admin_tokens`).
EVERY_OWNER = _EveryOwner()

#: Who asks: a gateway token's name, None without gateway tokens, or EVERY_OWNER.
Owner = str | None | _EveryOwner


class ResponseStoreError(Exception):
    """Base of every error raised by a response store."""


class ResponseStoreUnavailableError(ResponseStoreError):
    """The backend cannot be reached or used right now (retry later, answer 503)."""


class ResponseRecordError(ResponseStoreError, ValueError):
    """The record itself is wrong; storing it again will fail again."""


class ConversationError(ResponseStoreError):
    """The history of a response cannot be rebuilt."""


class ResponseNotFoundError(ConversationError):
    """`response_id` (asked for, or reached through previous_response_id) is missing or expired."""

    def __init__(self, response_id: str, requested_id: str) -> None:
        self.response_id = response_id
        self.requested_id = requested_id
        via = "" if response_id == requested_id else f" (previous response of {requested_id!r})"
        super().__init__(f"Response with id {response_id!r} not found{via}.")


class ConversationCycleError(ConversationError):
    """previous_response_id links loop back to a response already visited."""


class ConversationTooDeepError(ConversationError):
    """The previous_response_id chain is longer than the allowed depth."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredResponse:
    """One finished (or failed) response and what is needed to continue from it.

    `input_items` are this request's own input, already normalized to Responses item form;
    the history of earlier turns lives in the records `previous_response_id` points to.
    Upstream references are names, never secrets: `key_name` is the configured name of the
    API key (e.g. "openai-eu-1"), not the key; `owner` is the fingerprint of the gateway token
    that created the response ("tok_…", see `auth.token_owner`), None without gateway tokens.
    """

    id: str
    created_at: int
    model: str
    input_items: list[dict[str, Any]]
    instructions: str | None
    response: dict[str, Any]
    output_items: list[dict[str, Any]]
    previous_response_id: str | None = None
    provider: str | None = None
    key_name: str | None = None
    upstream_response_id: str | None = None
    owner: str | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ResponseRecordError("a stored response needs a non-empty id")
        for name in _REFERENCE_FIELDS:
            value = getattr(self, name)
            if value is not None and value.startswith(_SECRET_PREFIXES):
                raise ResponseRecordError(
                    f"{name} of response {self.id!r} looks like an API key ({value[:3]}…); "
                    "store the configured name of the provider or key, never the secret"
                )

    def to_json(self) -> bytes:
        data: dict[str, Any] = {"v": RECORD_FORMAT}
        for name in _FIELD_NAMES:
            data[name] = getattr(self, name)
        try:
            return orjson.dumps(data)
        except orjson.JSONEncodeError as exc:
            raise ResponseRecordError(f"response {self.id!r} cannot be serialized: {exc}") from exc

    @classmethod
    def from_json(cls, raw: bytes | str) -> StoredResponse:
        try:
            data = orjson.loads(raw)
            # Unknown keys are ignored so a replica can read what a newer replica wrote.
            return cls(**{name: data[name] for name in _FIELD_NAMES if name in data})
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise ResponseStoreError(f"a stored response is unreadable: {exc}") from exc


_FIELD_NAMES = tuple(f.name for f in fields(StoredResponse))


class ResponseStore(abc.ABC):
    """Async key-value store of `StoredResponse` by response id, with a retention TTL.

    `put` inserts or replaces; expired records are invisible to `get` and `delete`. `get` and
    `delete` are the backend's unscoped primitives: the API serves clients through the scoped
    `get_visible`, `delete_visible` and `conversation`.
    """

    @property
    def reachable(self) -> bool:
        """False while the backend is known to be down (a shared backend reconnecting)."""
        return True

    @abc.abstractmethod
    async def put(self, response_id: str, record: StoredResponse) -> None: ...

    @abc.abstractmethod
    async def get(self, response_id: str) -> StoredResponse | None: ...

    @abc.abstractmethod
    async def delete(self, response_id: str) -> bool:
        """Remove a live record; True if there was one."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and threads. Idempotent; the store is unusable afterwards."""

    async def get_visible(self, response_id: str, owner: Owner) -> StoredResponse | None:
        """The record if `owner` may see it; another owner's record is None, as if missing.

        A record whose own id is not `response_id` is missing too: with two gateways sharing a
        Redis under nested prefixes (`apex:responses:` and `apex:responses:staging:`), the id
        `staging:resp_x` names the other gateway's key."""
        record = await self.get(response_id)
        if record is None or record.id != response_id or not visible_to(record, owner):
            return None
        return record

    async def delete_visible(self, response_id: str, owner: Owner) -> bool:
        """Delete the record if `owner` may see it; True if there was one."""
        # Check, then delete: ids are unique and a record's owner never changes, so nothing
        # can slip in between.
        if await self.get_visible(response_id, owner) is None:
            return False
        return await self.delete(response_id)

    async def conversation(
        self, response_id: str, *, owner: Owner, max_depth: int = MAX_CONVERSATION_DEPTH
    ) -> list[StoredResponse]:
        """The records from the first turn to `response_id`, oldest first, as `owner` sees them.

        Raises ResponseNotFoundError if any record of the chain is missing, expired or not
        visible to `owner`: a silently shortened history would change what the model sees.
        """
        chain: list[StoredResponse] = []
        seen: set[str] = set()
        next_id: str | None = response_id
        while next_id is not None:
            if next_id in seen:
                raise ConversationCycleError(
                    f"previous_response_id of {chain[-1].id!r} loops back to {next_id!r}"
                )
            if len(chain) >= max_depth:
                raise ConversationTooDeepError(
                    f"response {response_id!r} has more than {max_depth} previous responses"
                )
            seen.add(next_id)
            record = await self.get_visible(next_id, owner)
            if record is None:
                raise ResponseNotFoundError(next_id, response_id)
            chain.append(record)
            next_id = record.previous_response_id
        chain.reverse()
        return chain

    async def conversation_items(
        self, response_id: str, *, owner: Owner, max_depth: int = MAX_CONVERSATION_DEPTH
    ) -> list[dict[str, Any]]:
        """Every input and output item up to and including `response_id`, in order.

        This is what a new request with `previous_response_id=response_id` prepends to its own
        input. Instructions are not part of it: as in OpenAI's API, they do not carry over.
        """
        items: list[dict[str, Any]] = []
        for record in await self.conversation(response_id, owner=owner, max_depth=max_depth):
            items.extend(record.input_items)
            items.extend(record.output_items)
        return items


def visible_to(record: StoredResponse, owner: Owner) -> bool:
    """Whether `owner` may read, continue or delete `record` (the one scoping rule)."""
    return owner is EVERY_OWNER or record.owner == owner


def check_record_id(response_id: str, record: StoredResponse) -> None:
    if response_id != record.id:
        raise ResponseRecordError(
            f"response stored under {response_id!r} has id {record.id!r}; they must match"
        )


__all__ = [
    "EVERY_OWNER",
    "MAX_CONVERSATION_DEPTH",
    "ConversationCycleError",
    "ConversationError",
    "ConversationTooDeepError",
    "ResponseNotFoundError",
    "ResponseRecordError",
    "ResponseStore",
    "ResponseStoreError",
    "ResponseStoreUnavailableError",
    "StoredResponse",
    "check_record_id",
    "Owner",
    "visible_to",
]
