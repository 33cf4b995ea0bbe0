"""Tasks the app starts, each with an owner that names it, holds it and ends it.

asyncio holds a running task only weakly: one that nobody keeps may be collected mid-flight,
its failure is reported only when it is, and nothing cancels it when the app stops. So every
service that starts tasks starts them through its own `Tasks`, and the service's close (from the
app's cleanup) cancels and awaits whatever is still running.

Imports nothing of ours: the relay's per-packet path uses it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger("yunbang.tasks")
T = TypeVar("T")


class Tasks:
    """The tasks one service started. Like `asyncio.TaskGroup`, but long-lived: a task that
    fails is logged and the others go on (a keyframe request that fails must not end a call),
    and `close` cancels instead of waiting.

    `spawn` costs a task, a set insertion and a done callback, no more than the bare
    ``ensure_future`` it replaces: the relay asks for keyframes and repairs through it.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._running: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._running)

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str,
              context: contextvars.Context | None = None) -> asyncio.Task[T]:
        """Run ``coro`` as a task named ``"{owner}: {name}"`` (``context``: the context variables
        it runs with; by default a copy of the caller's, as ``asyncio.create_task``). Once the
        owner is closed the task is cancelled before it starts: nothing runs after shutdown."""
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.owner}: {name}", context=context)
        self._running.add(task)
        task.add_done_callback(self._done)
        if self._closed:
            log.debug("%s started after its owner closed: cancelled", task.get_name())
            task.cancel()
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("task %s failed", task.get_name(), exc_info=exc)

    async def close(self) -> None:
        """Cancel every task still running and wait until each has ended, those started
        meanwhile (by a task's own cleanup) included. The task that calls this is left alone."""
        self._closed = True
        current = asyncio.current_task()
        while running := [t for t in self._running if t is not current]:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
