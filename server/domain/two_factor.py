"""两步验证 — a second factor (TOTP, RFC 6238) for the roles that see many people's cases.

Clerks, supervisors, administrators and auditors may enrol an authenticator app (any RFC 6238
app: SHA-1, 6 digits, 30-second steps); with ``YUNBANG_REQUIRE_2FA`` they must. Once enrolled,
a login needs the current code (or a recovery code) besides the password.

- **Codes**: the current step and one either side are accepted (clocks drift); a step at or
  before the last one used is refused, and the last step is recorded by a conditional update,
  so one code works once even when two logins race with it.
- **The secret** (20 random bytes) is shown once, while enrolling, and stored AES-GCM encrypted
  under a key derived from the server's secret key (HKDF-SHA256, label ``yunbang totp``), bound
  to the account's id; it is never returned after enrolment. Changing ``YUNBANG_SECRET_KEY``
  makes every enrolment unreadable: administrators then reset them (``yunbang reset-2fa``).
- **Recovery codes**: ten single-use codes of ten characters (50 bits each) shown once when
  enrolment is confirmed or codes are regenerated; each is kept as HMAC-SHA256 under a second
  derived key (label ``yunbang recovery codes``) over a per-code salt; using one is audited.
- **Enrolment pending**: while a required account has not enrolled, its sessions may only read
  ``/api/me``, enrol and log out (``enrolment_pending``, enforced where every request's actor
  is loaded); sockets are refused.
- **Every code check outside the login** (confirm, regenerate, turn off) is counted like a
  login attempt (``logins.begin_attempt``), so codes cannot be guessed faster there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, func, or_, select, update

from server.config import LoginPolicy
from server.domain import audit, logins
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Forbidden, Invalid, NotFound
from server.models import RecoveryCode, Role, User

ROLES = frozenset({Role.clerk, Role.supervisor, Role.admin, Role.auditor})
DIGITS = 6
STEP_SECONDS = 30
DRIFT_STEPS = 1
SECRET_BYTES = 20
RECOVERY_CODES = 10
RECOVERY_LENGTH = 10
RECOVERY_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols: no 0/O, 1/I
ISSUER = "云帮办"
_SEALED_PREFIX = "v1."


# --- RFC 4226 / RFC 6238 ------------------------------------------------------------------

def hotp(key: bytes, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    """HOTP (RFC 4226): HMAC over the 8-byte counter, dynamically truncated."""
    mac = hmac.new(key, counter.to_bytes(8, "big"), digest).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset:offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10 ** digits).zfill(digits)


def step_at(unix_time: float, step: int = STEP_SECONDS) -> int:
    return int(unix_time // step)


def totp(key: bytes, unix_time: float, *, digits: int = DIGITS, step: int = STEP_SECONDS,
         digest: str = "sha1") -> str:
    """TOTP (RFC 6238): HOTP of the number of ``step``-second periods since the epoch."""
    return hotp(key, step_at(unix_time, step), digits, digest)


def secret_from_text(text: str) -> bytes:
    """The secret an authenticator app is given (base32, spaces and case ignored)."""
    clean = text.replace(" ", "").replace("-", "").upper()
    return base64.b32decode(clean + "=" * (-len(clean) % 8))


def otpauth_uri(username: str, secret_b32: str) -> str:
    """What the QR code holds (the Key Uri Format authenticator apps read)."""
    label = quote(f"{ISSUER}:{username}")
    query = urlencode({"secret": secret_b32, "issuer": ISSUER, "algorithm": "SHA1",
                       "digits": DIGITS, "period": STEP_SECONDS}, quote_via=quote)
    return f"otpauth://totp/{label}?{query}"


def qr_data_url(text: str) -> str:
    """An SVG QR code as a data: URL (an <img> shows it; nothing leaves the server)."""
    return str(segno.make(text, error="m").svg_data_uri(scale=5, border=2))


# --- keys -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Keys:
    """Two keys derived from the server's secret key: one seals TOTP secrets (AES-256-GCM),
    the other keys the recovery codes' hashes (HMAC-SHA256)."""

    sealing: bytes
    codes: bytes

    @classmethod
    def derive(cls, secret_key: str) -> Keys:
        def hkdf(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret_key.encode())

        return cls(sealing=hkdf(b"yunbang totp"), codes=hkdf(b"yunbang recovery codes"))

    def seal(self, user_id: int, secret: bytes) -> str:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self.sealing).encrypt(nonce, secret, f"totp:{user_id}".encode())
        return _SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, user_id: int, sealed: str) -> bytes:
        try:
            raw = base64.urlsafe_b64decode(sealed.removeprefix(_SEALED_PREFIX))
            return AESGCM(self.sealing).decrypt(raw[:12], raw[12:], f"totp:{user_id}".encode())
        except (InvalidTag, ValueError) as exc:
            raise Conflict("2fa_secret_unreadable",
                           "两步验证的密钥无法读取（服务器密钥可能已更换），请联系管理员重置两步验证") from exc

    def code_digest(self, salt: str, code: str) -> str:
        return hmac.new(self.codes, f"{salt}:{code}".encode(), hashlib.sha256).hexdigest()


# --- who must, who has ------------------------------------------------------------------------

def required(policy: LoginPolicy, user: User) -> bool:
    return policy.require_two_factor and user.role in ROLES


def enrolled(user: User) -> bool:
    return user.totp_enabled_at is not None


def enrolment_pending(policy: LoginPolicy, user: User) -> bool:
    """A required account that has not enrolled: its sessions may only enrol."""
    return required(policy, user) and not enrolled(user)


def pending_error() -> Forbidden:
    return Forbidden("2fa_enrolment_required", "请先设置两步验证（用手机验证器扫码绑定）后再使用系统")


async def status(uow: Uow, user: User) -> dict[str, Any]:
    """``two_factor`` in ``/api/me`` and the login answer."""
    view: dict[str, Any] = {"enrolled": enrolled(user), "required": required(uow.login, user),
                            "available": user.role in ROLES}
    if enrolled(user):
        view["recovery_codes_left"] = int(await uow.session.scalar(
            select(func.count()).select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        ) or 0)
    return view


# --- the login's second step -------------------------------------------------------------------

async def check_login(uow: Uow, keys: Keys, attempt: logins.Attempt, otp: str | None,
                      recovery_code: str | None) -> None:
    """After a right password: an enrolled account needs its code too. A missing or wrong code
    leaves the attempt counted and audited (``logins.refuse_second_factor``)."""
    if attempt.user_id is None or not attempt.active:
        return  # ``finish_attempt`` refuses it without telling that the password was right
    user = await uow.session.get(User, attempt.user_id)
    if user is None or not enrolled(user):
        return
    if recovery_code:
        if not await _use_recovery_code(uow, keys, user, recovery_code, attempt.ip):
            raise await logins.refuse_second_factor(uow, attempt, "recovery_code")
    elif otp:
        if await _accept_code(uow, keys, user, otp) is None:
            raise await logins.refuse_second_factor(uow, attempt, "otp", reused=_reused(uow, keys, user, otp))
    else:
        raise await logins.refuse_second_factor(uow, attempt, "missing")


def _matching_step(uow: Uow, keys: Keys, user: User, code: str) -> int | None:
    if user.totp_secret is None or len(code) != DIGITS or not code.isdigit():
        return None
    secret = keys.open(user.id, user.totp_secret)
    now = step_at(uow.clock.now().timestamp())
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(hotp(secret, step), code):
            found = step
    return found


def _reused(uow: Uow, keys: Keys, user: User, code: str) -> bool:
    step = _matching_step(uow, keys, user, code)
    return step is not None and user.totp_last_step is not None and step <= user.totp_last_step


async def _accept_code(uow: Uow, keys: Keys, user: User, code: str) -> int | None:
    """The code's time step if it is right and newer than the last one used; that step is then
    recorded by one conditional update (a racing use of the same code updates nothing)."""
    step = _matching_step(uow, keys, user, code)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return None
    changed = await uow.changed(
        update(User).where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step).execution_options(synchronize_session=False)
    )
    if changed != 1:
        return None
    user.totp_last_step = step
    return step


def _normal_recovery(code: str) -> str:
    return code.replace("-", "").replace(" ", "").upper()


async def _use_recovery_code(uow: Uow, keys: Keys, user: User, code: str, ip: str) -> bool:
    wanted = _normal_recovery(code)
    if len(wanted) != RECOVERY_LENGTH or set(wanted) - set(RECOVERY_ALPHABET):
        return False
    unused = (await uow.session.scalars(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )).all()
    match = None
    for row in unused:
        if hmac.compare_digest(keys.code_digest(row.salt, wanted), row.digest):
            match = row
    if match is None:
        return False
    changed = await uow.changed(
        update(RecoveryCode).where(RecoveryCode.id == match.id, RecoveryCode.used_at.is_(None))
        .values(used_at=uow.clock.now()).execution_options(synchronize_session=False)
    )
    if changed != 1:
        return False
    audit.record(uow, Actor(user.id, user.username, user.role, ip=ip), "auth.recovery_code_used", "user", user.id,
                 remaining=len(unused) - 1)
    return True


# --- enrolment and its management ----------------------------------------------------------------

async def own_account(uow: Uow, actor: Actor) -> User:
    """The acting person's own account, if their role may use a second factor."""
    actor.require(*ROLES)
    user = await uow.session.get(User, actor.user_id)
    if user is None:
        raise NotFound("user_not_found", "用户不存在")
    return user


def _wrong_code(reused: bool = False) -> Invalid:
    error = Invalid("invalid_otp", logins.REUSED_CODE if reused else logins.WRONG_CODE,
                    reason="reused" if reused else "wrong")
    error.keep_changes = True  # the check stays counted (and audited)
    return error


async def _prove(uow: Uow, keys: Keys, actor: Actor, user: User, otp: str, purpose: str) -> None:
    """A code check by a logged-in person, counted like a login attempt."""
    attempt = await logins.begin_attempt(uow, actor.username, actor.ip)
    if await _accept_code(uow, keys, user, otp) is None:
        reused = _reused(uow, keys, user, otp)
        audit.record(uow, actor, "auth.2fa_failed", "user", user.id, purpose=purpose)
        raise _wrong_code(reused)
    await logins.finish_attempt(uow, attempt, True)


async def _new_recovery_codes(uow: Uow, keys: Keys, user: User) -> list[str]:
    """Ten fresh codes replace every earlier one; only their keyed hashes are kept."""
    await uow.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes, now = [], uow.clock.now()
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        salt = secrets.token_hex(8)
        uow.session.add(RecoveryCode(user_id=user.id, salt=salt, digest=keys.code_digest(salt, raw), created_at=now))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    await uow.session.flush()
    return codes


async def begin_enrolment(uow: Uow, keys: Keys, actor: Actor) -> dict[str, Any]:
    """绑定验证器 — a new secret for the person's authenticator app, not in force until a code
    from the app confirms it. Shown this once; a second call replaces it."""
    user = await own_account(uow, actor)
    if enrolled(user):
        raise Conflict("2fa_already_enabled", "两步验证已开启；更换手机请先关闭，或请管理员重置")
    secret = secrets.token_bytes(SECRET_BYTES)
    user.totp_secret = keys.seal(user.id, secret)
    user.totp_last_step = None
    audit.record(uow, actor, "auth.2fa_enrolment_started", "user", user.id)
    text = base64.b32encode(secret).decode().rstrip("=")
    uri = otpauth_uri(user.username, text)
    return {"secret": text, "otpauth_uri": uri, "qr_code": qr_data_url(uri), "issuer": ISSUER,
            "algorithm": "SHA1", "digits": DIGITS, "period": STEP_SECONDS}


async def confirm_enrolment(uow: Uow, keys: Keys, actor: Actor, otp: str) -> list[str]:
    """A right code turns the second factor on; the recovery codes are returned this once.
    The person's other sessions (opened with the password alone) end."""
    user = await own_account(uow, actor)
    if enrolled(user):
        raise Conflict("2fa_already_enabled", "两步验证已开启")
    if user.totp_secret is None:
        raise Conflict("2fa_not_started", "请先开始绑定验证器")
    await _prove(uow, keys, actor, user, otp, "confirm")
    user.totp_enabled_at = uow.clock.now()
    codes = await _new_recovery_codes(uow, keys, user)
    audit.record(uow, actor, "auth.2fa_enabled", "user", user.id)
    await logins.revoke_all(uow, user.id, "2fa_enabled", keep=actor.session_id)
    return codes


async def regenerate_recovery_codes(uow: Uow, keys: Keys, actor: Actor, otp: str) -> list[str]:
    user = await own_account(uow, actor)
    if not enrolled(user):
        raise Conflict("2fa_not_enabled", "尚未开启两步验证")
    await _prove(uow, keys, actor, user, otp, "recovery_codes")
    codes = await _new_recovery_codes(uow, keys, user)
    audit.record(uow, actor, "auth.recovery_codes_regenerated", "user", user.id)
    return codes


def check_may_turn_off(uow: Uow, user: User) -> None:
    if not enrolled(user) and user.totp_secret is None:
        raise Conflict("2fa_not_enabled", "尚未开启两步验证")
    if required(uow.login, user):
        raise Conflict("2fa_required", "本系统要求您的角色使用两步验证，不能关闭；更换手机请联系管理员重置")


async def turn_off(uow: Uow, keys: Keys, actor: Actor, *, otp: str | None) -> None:
    """关闭 — by the person (with a code, or after ``Domain`` checked the password), only where
    no setting requires it."""
    user = await own_account(uow, actor)
    check_may_turn_off(uow, user)
    if otp is not None:
        await _prove(uow, keys, actor, user, otp, "turn_off")
    await _clear(uow, user)
    audit.record(uow, actor, "auth.2fa_disabled", "user", user.id, by="otp" if otp is not None else "password")


async def _clear(uow: Uow, user: User) -> None:
    user.totp_secret, user.totp_enabled_at, user.totp_last_step = None, None, None
    await uow.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


async def reset(uow: Uow, actor: Actor, user_id: int) -> User:
    """管理员重置 — a lost phone: the enrolment and recovery codes are cleared and every session
    of the account ends; where the setting requires it, the next login enrols again."""
    actor.require(Role.admin)
    user = await uow.session.get(User, user_id)
    if user is None:
        raise NotFound("user_not_found", "用户不存在", user_id=user_id)
    was = enrolled(user)
    await _clear(uow, user)
    ended = await logins.revoke_all(uow, user.id, "2fa_reset")
    audit.record(uow, actor, "auth.2fa_reset", "user", user.id, was_enrolled=was, sessions_ended=ended)
    return user

