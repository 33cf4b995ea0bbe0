from typing import Any

CONNECT: int
DISCONNECT: int
EVENT: int
ACK: int
CONNECT_ERROR: int
BINARY_EVENT: int
BINARY_ACK: int

class Packet:
    packet_type: int
    data: Any
    namespace: str | None
    id: int | None
    def __init__(self, packet_type: int = ..., data: Any = ..., namespace: str | None = ..., id: int | None = ...,
                 binary: bool | None = ..., encoded_packet: Any = ...) -> None: ...
    def encode(self) -> str | list[Any]: ...
    def decode(self, encoded_packet: Any) -> int:
        """How many binary attachment packets are still to come."""
