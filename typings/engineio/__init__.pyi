"""python-engineio 4, the asyncio server side that yunbang uses (the package ships no types)."""

import asyncio
from collections.abc import Callable
from typing import Any

from engineio.async_socket import AsyncSocket

class AsyncServer:
    sockets: dict[str, AsyncSocket]
    def __init__(self, async_mode: str | None = ..., **kwargs: Any) -> None: ...
    def start_background_task(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Task[Any]: ...
    async def shutdown(self) -> None: ...
    async def handle_request(self, *args: Any, **kwargs: Any) -> Any: ...
