"""群众/企业账号 — residents and firms who call the centre from their own phone (屏对屏).

They sign in with their mobile number and a one-time code texted to it (through the outbox,
server/domain/notify.py); there is no password. The rules (``config.LoginPolicy``):

- a code has 6 digits, lives ``code_ttl_seconds`` (5 min) and takes ``code_max_attempts`` (5)
  wrong tries; only a keyed hash of it is kept, and the newest code of a number is the only one
  that counts;
- a number is sent one code every ``code_resend_seconds`` (60 s) and ``codes_per_number_hour``
  (5) an hour; one address asks for ``codes_per_address_hour`` (20) an hour, whatever the
  numbers (429 with ``retry_after``); a refused ask sends nothing and stores nothing;
- the first sign-in (and the first after the privacy notice changes) must agree to the notice
  (``PRIVACY_VERSION``); the agreement and its time are kept on the account;
- a firm signs in the same way and names itself: its unified social credit code (统一社会信用
  代码, GB 32100-2015, 18 characters with a check character) and its name.

The account (role ``resident``) is found again by a keyed hash of the number; the number itself
is kept sealed, and shown masked. A resident sees only the tickets they took themselves
(``access.serves``): on those they sit where a community worker sits for a ticket taken at an
extension point.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from server.domain import audit, notify
from server.domain.context import Actor, Uow
from server.domain.errors import Gone, Invalid, TooManyAttempts, Unauthorized
from server.domain.personal import mask_phone
from server.models import Role, SignInCode, User

PRIVACY_VERSION = "2026-12"
CODE = re.compile(r"^\d{6}$")
CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
NO_PASSWORD = "!"  # a resident's account has no password: no argon2 hash verifies against this


def credit_code_valid(code: str) -> bool:
    """统一社会信用代码: 18 characters of the code's alphabet whose last is the check character."""
    if len(code) != 18 or any(c not in CREDIT_CODE_CHARS for c in code):
        return False
    total = sum(CREDIT_CODE_CHARS.index(c) * w for c, w in zip(code[:17], CREDIT_CODE_WEIGHTS, strict=True))
    return CREDIT_CODE_CHARS[(31 - total % 31) % 31] == code[17]


def _phone(value: str) -> str:
    phone = value.strip().replace(" ", "").replace("-", "")
    if not notify.PHONE.match(phone):
        raise Invalid("phone_invalid", "请填写正确的 11 位手机号码")
    return phone


def _phone_hash(uow: Uow, phone: str) -> str:
    return uow.sealer.search_hash(f"phone:{phone}")


def _code_hash(uow: Uow, phone_hash: str, code: str) -> str:
    return uow.sealer.search_hash(f"sign-in-code:{phone_hash}:{code}")


def _anonymous(phone: str, ip: str) -> Actor:
    return Actor(0, mask_phone(phone) or "", Role.resident, ip=ip)


async def send_code(uow: Uow, phone: str, ip: str) -> dict[str, Any]:
    """获取验证码 — text a new code to ``phone`` unless the number or the address asked too often."""
    phone = _phone(phone)
    rules, now = uow.login, uow.clock.now()
    key = _phone_hash(uow, phone)
    # Concurrent requests for one number, or from one address, one at a time (number, then address:
    # one order), so each limit counts the others' codes.
    await uow.serialize(f"sign-in-code:{key}")
    await uow.serialize(f"sign-in-code-ip:{ip[:64]}")
    hour_ago = now - timedelta(hours=1)
    mine = (await uow.session.execute(
        select(func.count(), func.min(SignInCode.created_at), func.max(SignInCode.created_at))
        .where(SignInCode.phone_hash == key, SignInCode.created_at > hour_ago))).one()
    count, oldest, newest = int(mine[0]), mine[1], mine[2]
    if newest is not None and (now - newest).total_seconds() < rules.code_resend_seconds:
        wait = int(rules.code_resend_seconds - (now - newest).total_seconds()) + 1
        raise TooManyAttempts("code_too_soon", f"验证码已发送，请 {wait} 秒后再获取", retry_after=wait)
    if count >= rules.codes_per_number_hour and oldest is not None:
        wait = int((oldest + timedelta(hours=1) - now).total_seconds()) + 1
        raise TooManyAttempts("codes_per_number", f"该号码获取验证码过于频繁，请 {wait // 60 + 1} 分钟后再试",
                              retry_after=wait)
    from_address = await uow.session.scalar(
        select(func.count()).select_from(SignInCode).where(SignInCode.ip == ip[:64], SignInCode.created_at > hour_ago))
    if int(from_address or 0) >= rules.codes_per_address_hour:
        raise TooManyAttempts("codes_per_address", "当前网络获取验证码过于频繁，请稍后再试", retry_after=3600)
    code = f"{secrets.randbelow(10**6):06d}"
    uow.session.add(SignInCode(phone_hash=key, code_hash=_code_hash(uow, key, code), ip=ip[:64], created_at=now,
                               expires_at=now + timedelta(seconds=rules.code_ttl_seconds), attempts=0))
    minutes = max(1, int(rules.code_ttl_seconds // 60))
    await notify.queue(uow, channel="sms", kind="sign_in_code", to=phone,
                       text=f"【云帮办】您的登录验证码为 {code}，{minutes} 分钟内有效。工作人员不会向您索要验证码，请勿告诉他人。")
    audit.record(uow, _anonymous(phone, ip), "resident.code_sent", "phone", mask_phone(phone) or "")
    return {"expires_in_s": int(rules.code_ttl_seconds), "resend_after_s": int(rules.code_resend_seconds)}


def _firm(firm: dict[str, str] | None) -> tuple[str, str] | None:
    if firm is None:
        return None
    code = firm.get("credit_code", "").strip().upper()
    name = firm.get("name", "").strip()
    if not credit_code_valid(code):
        raise Invalid("credit_code_invalid", "统一社会信用代码不正确（18 位，请核对营业执照）")
    if not name or len(name) > 100:
        raise Invalid("firm_name_required", "请填写企业名称（营业执照上的全称）")
    return code, name


async def sign_in(uow: Uow, phone: str, code: str, ip: str, *, consent: bool,
                  firm: dict[str, str] | None = None) -> User:
    """以验证码登录 — check the newest code of the number; the account is made at the first
    sign-in. Bad input (number, code's form, firm, missing consent) changes nothing; a wrong code
    counts as a try (``keep_changes``)."""
    phone = _phone(phone)
    code = code.strip()
    if not CODE.match(code):
        raise Invalid("code_format", "请输入短信中的 6 位数字验证码")
    firm_fields = _firm(firm)
    key = _phone_hash(uow, phone)
    user = await uow.session.scalar(select(User).where(User.phone_hash == key))
    if user is not None and user.role is not Role.resident:  # never: staff have no phone_hash
        raise Unauthorized("code_invalid", "验证码不正确，请重新获取")
    if not consent and (user is None or user.consent_version != PRIVACY_VERSION):
        raise Invalid("consent_required", "请先阅读并同意《个人信息保护告知书》")
    if user is not None and not user.active:
        raise Unauthorized("account_disabled", "账号已停用，请联系服务中心")
    now = uow.clock.now()
    row = await uow.session.scalar(
        select(SignInCode).where(SignInCode.phone_hash == key).order_by(SignInCode.id.desc()).limit(1)
        .with_for_update())
    if row is None or row.used_at is not None:
        raise Unauthorized("code_invalid", "验证码不正确或已使用，请重新获取")
    if row.expires_at <= now:
        raise Gone("code_expired", "验证码已过期，请重新获取")
    if row.attempts >= uow.login.code_max_attempts:
        raise TooManyAttempts("code_attempts", "验证码错误次数过多，请重新获取")
    if not hmac.compare_digest(row.code_hash, _code_hash(uow, key, code)):
        row.attempts += 1
        left = uow.login.code_max_attempts - row.attempts
        error = Unauthorized("code_invalid", f"验证码不正确，还可再试 {left} 次" if left else "验证码不正确，请重新获取",
                             attempts_left=left)
        error.keep_changes = True
        audit.record(uow, _anonymous(phone, ip), "resident.sign_in_failed", "phone", mask_phone(phone) or "")
        raise error
    row.used_at = now
    if user is None:
        user = User(username=f"m-{key[:16]}", display_name=mask_phone(phone) or "", password_hash=NO_PASSWORD,
                    role=Role.resident, active=True, specialties=[], created_at=now, phone_hash=key,
                    phone_sealed=uow.sealer.seal({"phone": phone}))
        uow.session.add(user)
    if consent and user.consent_version != PRIVACY_VERSION:
        user.consent_version, user.consent_at = PRIVACY_VERSION, now
    if firm_fields is not None:
        user.firm_credit_code, user.firm_name = firm_fields
        user.display_name = firm_fields[1][:50]
    await uow.session.flush()
    audit.record(uow, Actor(user.id, user.username, Role.resident, ip=ip), "resident.sign_in", "user", user.id,
                 firm=firm_fields is not None, consent_version=user.consent_version)
    return user


PRIVACY_TEXT = (
    "为通过“屏对屏”远程视频为您办理政务服务事项，我们将处理您的以下个人信息：手机号码（用于登录和接收"
    "办理通知）、您填写的姓名及证件号码、通话中的音视频和您上传的证件照片（用于受理审核）。",
    "这些信息仅向为您办理本件业务的工作人员展示，其他人员只能看到脱敏后的内容；每一次完整查看都会被记录，"
    "供审计核查。证件号码和手机号码加密存储。",
    "办件材料按档案管理规定的期限保存，期满后删除；您可以随时致电服务中心查询、更正您的信息或注销账号。",
    "您可以不同意本告知书，但将无法使用“屏对屏”远程办理，可前往就近便民服务中心或延伸点现场办理。",
)


def privacy_notice() -> dict[str, str]:
    """个人信息保护告知书 — what a resident agrees to at their first sign-in."""
    return {"version": PRIVACY_VERSION, "title": "个人信息保护告知书", "text": "\n\n".join(PRIVACY_TEXT)}


def phone_of(uow: Uow, user: User) -> str:
    """The resident's own number (opened from the sealed record; never logged)."""
    return uow.sealer.open(user.phone_sealed).get("phone", "") if user.phone_sealed else ""
