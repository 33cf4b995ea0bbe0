"""Bearer tokens: signed (HS256), expiring, checked against a live, active user on every use."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt

from server.domain.errors import Unauthorized

ISSUER = "yunbang"


class TokenSigner:
    def __init__(self, secret: str, ttl_hours: float) -> None:
        if len(secret) < 32:
            raise ValueError("YUNBANG_SECRET_KEY must be at least 32 characters")
        self._secret = secret
        self._ttl = timedelta(hours=ttl_hours)

    def issue(self, user_id: int, role: str, now: datetime | None = None) -> tuple[str, datetime]:
        now = now or datetime.now(timezone.utc)
        expires = now + self._ttl
        token = jwt.encode(
            {"sub": str(user_id), "role": role, "iat": now, "exp": expires, "iss": ISSUER},
            self._secret,
            algorithm="HS256",
        )
        return token, expires

    def user_id(self, token: str) -> int:
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], issuer=ISSUER)
            return int(claims["sub"])
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token_expired", "登录已过期，请重新登录") from exc
        except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
            raise Unauthorized("invalid_token", "登录凭证无效，请重新登录") from exc
