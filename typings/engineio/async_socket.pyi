class AsyncSocket:
    sid: str
    closed: bool
    async def close(self, wait: bool = ..., abort: bool = ..., reason: str | None = ...) -> None: ...
