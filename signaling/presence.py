"""在线状态 — who is connected and who sits in a call, from this node's live connections.

A user is ``online`` while at least one of their sockets is connected, ``busy`` while they
also hold a place in a call, and ``offline`` once their last socket is gone (a closed tab, a
killed browser: socket.io notices the dropped connection, or its ping times out). This is
one node's view; `server.domain.experts.PresenceView` is the interface a Redis-backed book
shared by several nodes would implement.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable


class LocalPresence:
    def __init__(self, in_call: Callable[[int], bool] = lambda user_id: False) -> None:
        self._sockets: Counter[int] = Counter()
        self._in_call = in_call

    def connected(self, user_id: int) -> None:
        self._sockets[user_id] += 1

    def disconnected(self, user_id: int) -> None:
        self._sockets[user_id] -= 1
        if self._sockets[user_id] <= 0:
            del self._sockets[user_id]

    def state(self, user_id: int) -> str:
        if not self._sockets.get(user_id):
            return "offline"
        return "busy" if self._in_call(user_id) else "online"
