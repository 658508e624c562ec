"""Virtual keys (issue 16): one key per person, app or team, with a model allowlist, limits,
a budget and its spend. One module per concern:

    config.py           `virtual_keys:` (store, cache TTL, per-key metrics)
    model.py            a key's fields, the key itself (`sk-apex-…`) and its one-way hash
    store.py            the store interface, its errors and rows
    backend.py          `open_store`: the backend the config names
    sqlite_store.py     the store in a SQLite file (sqlite_util)
    postgres_store.py   the store in Postgres (asyncpg)
    cache.py            every replica's in-memory copy of the keys and their period spend
    guard.py            the gateway's side: who presented which key, may it use this model,
                        its limits (the keypool ledger, unit `vk:<id>`) and its budget
    headers.py          a limited key's x-ratelimit-* on its answers and its 429s
    metrics.py          spend and requests per key name on /metrics

This package imports nothing of the gateway's config (config.py imports its config module).
"""
