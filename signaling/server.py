"""The socket.io server, with every task it starts owned (signaling/tasks.py).

python-socketio runs each client event's handler, and engine.io each socket's next ping and
its check of silent clients, as tasks of their own that nobody keeps or ends: a handler still
running when the app stops would go on against services already closed, and a ping waits out
its 25 s after its socket has gone. Here they start in the server's `Tasks` (the Redis
manager's pub/sub reader too), and `close` ends them.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import engineio
import socketio

from signaling.tasks import Tasks


class _EngineServer(engineio.AsyncServer):
    def __init__(self, *, tasks: Tasks, **options: Any) -> None:
        self.tasks = tasks
        super().__init__(**options)

    def start_background_task(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Task[Any]:
        return self.tasks.spawn(target(*args, **kwargs), name=getattr(target, "__name__", "background"))


class SocketServer(socketio.AsyncServer):
    def __init__(self, **options: Any) -> None:
        self.tasks = Tasks("socket.io")
        super().__init__(**options)

    def _engineio_server_class(self) -> Callable[..., engineio.AsyncServer]:
        return functools.partial(_EngineServer, tasks=self.tasks)

    async def close(self) -> None:
        """Stop engine.io's check of silent clients and end every task still running: pings,
        event handlers. Call once the clients are disconnected."""
        await self.shutdown()
        await self.tasks.close()

    async def close_manager(self) -> None:
        """With Redis (several nodes): close the manager's connections, which python-socketio 5
        has no call for (its ``pubsub`` and ``redis`` clients). After `close` and after the last
        emit."""
        for client in (getattr(self.manager, "pubsub", None), getattr(self.manager, "redis", None)):
            if client is not None:
                await client.aclose()
