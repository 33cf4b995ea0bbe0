"""Bearer tokens: signed (HS256), expiring, naming a session that is checked (not revoked, the
account active) on every use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from server.domain.errors import Unauthorized

ISSUER = "yunbang"


class TokenSigner:
    def __init__(self, secret: str, ttl_hours: float) -> None:
        if len(secret) < 32:
            raise ValueError("YUNBANG_SECRET_KEY must be at least 32 characters")
        self._secret = secret
        self._ttl = timedelta(hours=ttl_hours)

    def issue(self, user_id: int, role: str, session_id: str, now: datetime | None = None) -> tuple[str, datetime]:
        """A token for one session (``auth_sessions``): revoking the session ends the token."""
        now = now or datetime.now(UTC)
        expires = now + self._ttl
        token = jwt.encode(
            {"sub": str(user_id), "sid": session_id, "role": role, "iat": now, "exp": expires, "iss": ISSUER},
            self._secret,
            algorithm="HS256",
        )
        return token, expires

    def claims(self, token: str) -> tuple[int, str]:
        """(user id, session id) of a valid token."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], issuer=ISSUER,
                                options={"require": ["sub", "sid", "exp"]})
            return int(claims["sub"]), str(claims["sid"])
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token_expired", "登录已过期，请重新登录") from exc
        except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
            raise Unauthorized("invalid_token", "登录凭证无效，请重新登录") from exc
