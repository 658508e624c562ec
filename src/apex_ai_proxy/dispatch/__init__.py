"""Dispatch: the attempt loop. Pick a candidate, translate, send, classify, cool down, retry.

dispatcher.py  Dispatcher: the attempt loop (candidates, attempts budget, disconnect check),
               one attempt, and the same walk for count_tokens
failures.py    failure classification and cooldown, the error when no upstream could answer,
               Retry-After
answers.py     a whole answer vs the start of a stream, the gateway's response headers
planning.py    which translation an attempt needs, and the body it sends upstream
settings.py    per-provider timeouts and client options
operation.py   what the client asked for (Operation) and the ClientTap that sees the answer
"""

from apex_ai_proxy.dispatch.dispatcher import Dispatcher
from apex_ai_proxy.dispatch.failures import Call, Cooldown, Failure, parse_retry_after
from apex_ai_proxy.dispatch.operation import ClientTap, Operation

__all__ = [
    "Call",
    "ClientTap",
    "Cooldown",
    "Dispatcher",
    "Failure",
    "Operation",
    "parse_retry_after",
]
