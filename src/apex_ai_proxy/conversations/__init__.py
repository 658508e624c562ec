"""The Responses API's stored conversations (the endpoints are in `endpoints/responses.py`).

    store.py    ConversationStore: opens the response store, scopes it to the gateway token,
                and turns its failures into the client's 503 (StoreUnavailable) or 404
    items.py    a request's `input` as stored items, the create body's checks, list pages
    tap.py      StoreTap / StoringStream: store what the client receives, before its id does
    chain.py    previous_response_id: the stored history, and the upstream pinned to it

Named "conversations", not "responses": that word already means the OpenAI API and a whole
(non-streamed) answer.
"""
