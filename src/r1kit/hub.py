"""Whether the Hugging Face hub can be reached, decided in seconds, before a hub download is tried.

Without a network, `datasets` and `transformers` retry the hub for 30 to 50 seconds before they fail.
So before any hub load r1kit opens one TCP connection to the hub's endpoint (`HF_ENDPOINT`, default
https://huggingface.co) with a short timeout; when that fails, the load stops at once with one line
naming the fix. With `HF_HUB_OFFLINE=1` no connection is tried and the libraries read their local cache
(which fails fast by itself when the file is not cached): the way to use a cache without a network.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 3.0


def offline_mode() -> bool:
    """HF_HUB_OFFLINE (or its older names) is set to a true value: use the local cache only."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(n, "").strip().upper() in ("1", "ON", "YES", "TRUE") for n in names)


@functools.cache
def _unreachable(endpoint: str) -> str:
    url = urlparse(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        return f"{host}:{port}: {e.strerror or type(e).__name__}"
    return ""


def hub_unreachable() -> str:
    """Why the hub cannot be reached ("" when it can, or in offline mode, where the cache is read)."""
    if offline_mode():
        return ""
    return _unreachable(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))


def require_hub(what: str, fix: str) -> None:
    """Raise ValueError (one line) when the hub cannot be reached to load `what`; `fix` says what to do."""
    reason = hub_unreachable()
    if reason:
        raise ValueError(f"cannot reach the Hugging Face hub ({reason}) to load {what}: {fix}, or set "
                         "HF_HUB_OFFLINE=1 to read it from the local hub cache")
