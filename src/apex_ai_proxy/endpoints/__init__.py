"""The public surfaces, one module each; each handler is `handle(request, ctx)` and is served
through `lifecycle.endpoint` (context, auth, error rendering, record), mounted by `app.py`.

    chat.py         POST /v1/chat/completions
    messages.py     POST /v1/messages, POST /v1/messages/count_tokens
    responses.py    /v1/responses: create, retrieve, delete, input_items, cancel
    embeddings.py   POST /v1/embeddings
    models.py       GET /v1/models
    gemini.py       Google's Gemini API: /v1beta/models/{model}:generateContent, … (and /v1/)
    passthrough.py  any request carrying X-APEX-AI-PROXY-PROVIDER
    ops.py          /healthz, /readyz, /metrics
    intake.py       reading and checking a request body; the steps every model endpoint shares
"""
