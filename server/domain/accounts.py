"""Accounts: users of the five roles, password checks and login throttling."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from server.domain import audit
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Invalid, NotFound, TooManyAttempts, Unauthorized
from server.models import (
    CloudWindow,
    Department,
    ExtensionPoint,
    LoginAttempt,
    Role,
    User,
)

_hasher = PasswordHasher()
MIN_PASSWORD = 8
_DUMMY_HASH = _hasher.hash("timing-equaliser")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(hash_: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(hash_, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def _user_query() -> Any:
    return select(User).options(
        selectinload(User.windows).selectinload(CloudWindow.departments),
        selectinload(User.departments),
    )


async def load_user(uow: Uow, user_id: int) -> User | None:
    user: User | None = (await uow.session.scalars(_user_query().where(User.id == user_id))).first()
    return user


def actor_for(user: User, ip: str = "") -> Actor:
    windows = frozenset(w.id for w in user.windows if w.active)
    if user.role is Role.supervisor:
        departments = frozenset(d.id for d in user.departments)
    else:
        departments = frozenset(d.id for w in user.windows if w.active for d in w.departments)
    return Actor(
        user_id=user.id,
        username=user.username,
        role=user.role,
        extension_point_id=user.extension_point_id,
        window_ids=windows,
        department_ids=departments,
        ip=ip,
    )


async def authenticate(uow: Uow, username: str, password: str, ip: str = "") -> User:
    """Check a password; after N failures the account is locked for a while (429)."""
    now = uow.clock.now()
    attempt = await uow.session.get(LoginAttempt, username)
    if attempt and attempt.locked_until and attempt.locked_until > now:
        seconds = int((attempt.locked_until - now).total_seconds()) + 1
        raise TooManyAttempts(
            "login_locked",
            f"登录失败次数过多，请 {seconds} 秒后再试",
            retry_after=seconds,
        )
    user: User | None = (
        await uow.session.scalars(_user_query().where(User.username == username))
    ).first()
    ok = await _verify(user.password_hash if user else _DUMMY_HASH, password)
    if not ok or user is None or not user.active:
        if attempt is None:
            attempt = LoginAttempt(username=username, failures=0)
            uow.session.add(attempt)
        attempt.failures += 1
        attempt.last_failure_at = now
        max_failures, lockout_seconds = uow.login_limits
        if attempt.failures >= max_failures:
            attempt.locked_until = now + timedelta(seconds=lockout_seconds)
            attempt.failures = 0
        audit.record(
            uow,
            Actor(0, username, Role.worker, ip=ip),
            "auth.login_failed",
            "user",
            user.id if user else "",
        )
        error = Unauthorized("invalid_credentials", "用户名或密码错误")
        error.keep_changes = True
        raise error
    if attempt is not None:
        await uow.session.delete(attempt)
    audit.record(uow, actor_for(user, ip), "auth.login", "user", user.id)
    return user


def user_view(user: User) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "active": user.active,
        "extension_point_id": user.extension_point_id,
        "specialties": list(user.specialties or []),
        "available": user.available,
        "parallel_consultations": user.parallel_consultations,
        "windows": [
            {
                "id": w.id,
                "name": w.name,
                "centre_id": w.centre_id,
                "tidal": w.tidal,
                "active": w.active,
                "departments": [{"id": d.id, "code": d.code, "name": d.name} for d in w.departments],
            }
            for w in sorted(user.windows, key=lambda w: w.id)
        ],
        "departments": [
            {"id": d.id, "code": d.code, "name": d.name}
            for d in sorted(user.departments, key=lambda d: d.id)
        ],
    }
    return view


async def create_user(
    uow: Uow,
    actor: Actor,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str = "",
    extension_point_id: int | None = None,
    window_ids: list[int] | None = None,
    department_ids: list[int] | None = None,
    specialties: list[str] | None = None,
) -> User:
    actor.require(Role.admin)
    if len(password) < MIN_PASSWORD:
        raise Invalid("password_too_short", f"密码至少 {MIN_PASSWORD} 位")
    existing = await uow.session.scalar(select(User.id).where(User.username == username))
    if existing is not None:
        raise Conflict("username_taken", f"用户名 {username} 已存在")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=await hash_password(password),
        role=role,
        active=True,
        specialties=specialties or [],
        created_at=uow.clock.now(),
        windows=[],
        departments=[],
    )
    await _bind(uow, user, extension_point_id, window_ids, department_ids)
    uow.session.add(user)
    await uow.session.flush()
    audit.record(uow, actor, "user.create", "user", user.id, username=username, role=role.value)
    return user


async def update_user(
    uow: Uow,
    actor: Actor,
    user_id: int,
    *,
    display_name: str | None = None,
    password: str | None = None,
    active: bool | None = None,
    extension_point_id: int | None = None,
    window_ids: list[int] | None = None,
    department_ids: list[int] | None = None,
    specialties: list[str] | None = None,
) -> User:
    actor.require(Role.admin)
    user = await load_user(uow, user_id)
    if user is None:
        raise NotFound("user_not_found", "用户不存在", user_id=user_id)
    changed: dict[str, Any] = {}
    if display_name is not None:
        user.display_name = display_name
        changed["display_name"] = display_name
    if password is not None:
        if len(password) < MIN_PASSWORD:
            raise Invalid("password_too_short", f"密码至少 {MIN_PASSWORD} 位")
        user.password_hash = await hash_password(password)
        changed["password"] = "changed"
    if active is not None:
        if user.id == actor.user_id and not active:
            raise Conflict("cannot_disable_self", "不能停用自己的账号")
        user.active = active
        changed["active"] = active
    if specialties is not None:
        user.specialties = specialties
        changed["specialties"] = specialties
    await _bind(uow, user, extension_point_id, window_ids, department_ids)
    audit.record(uow, actor, "user.update", "user", user.id, **changed)
    return user


async def _bind(
    uow: Uow,
    user: User,
    extension_point_id: int | None,
    window_ids: list[int] | None,
    department_ids: list[int] | None,
) -> None:
    """Bind a user to what their role works at; refuse bindings that do not fit the role."""
    if user.role is Role.worker:
        point_id = extension_point_id if extension_point_id is not None else user.extension_point_id
        if point_id is None:
            raise Invalid("extension_point_required", "社区工作人员必须绑定一个延伸点")
        if await uow.session.get(ExtensionPoint, point_id) is None:
            raise NotFound("extension_point_not_found", "延伸点不存在", extension_point_id=point_id)
        user.extension_point_id = point_id
    elif extension_point_id is not None:
        raise Invalid("extension_point_not_allowed", "只有社区工作人员绑定延伸点")
    if window_ids is not None:
        if user.role is not Role.clerk:
            raise Invalid("windows_not_allowed", "只有云窗口工作人员绑定窗口")
        windows = list(
            (
                await uow.session.scalars(
                    select(CloudWindow)
                    .options(selectinload(CloudWindow.departments))
                    .where(CloudWindow.id.in_(window_ids))
                )
            ).all()
        )
        if len(windows) != len(set(window_ids)):
            raise NotFound("window_not_found", "窗口不存在", window_ids=window_ids)
        user.windows = windows
    if department_ids is not None:
        if user.role is not Role.supervisor:
            raise Invalid("departments_not_allowed", "只有部门负责人绑定部门")
        departments = list(
            (await uow.session.scalars(select(Department).where(Department.id.in_(department_ids)))).all()
        )
        if len(departments) != len(set(department_ids)):
            raise NotFound("department_not_found", "部门不存在", department_ids=department_ids)
        user.departments = departments


async def list_clerks(uow: Uow, actor: Actor, department_id: int | None = None) -> list[dict[str, Any]]:
    """云窗口工作人员 — for a supervisor opening a tidal window: active clerks with their windows,
    limited to the supervisor's departments (all for an admin), or to one of them."""
    actor.require(Role.supervisor, Role.admin)
    if department_id is not None and actor.role is Role.supervisor and department_id not in actor.department_ids:
        raise NotFound("department_not_found", "部门不存在", department_id=department_id)
    clerks = (await uow.session.scalars(
        _user_query().where(User.role == Role.clerk, User.active.is_(True)).order_by(User.id)
    )).all()
    wanted = {department_id} if department_id is not None else (
        set(actor.department_ids) if actor.role is Role.supervisor else None
    )
    views = []
    for clerk in clerks:
        served = {d.id for w in clerk.windows for d in w.departments}
        if wanted is not None and not served & wanted:
            continue
        view = user_view(clerk)
        views.append({k: view[k] for k in ("id", "username", "display_name", "windows")})
    return views


async def list_users(uow: Uow, actor: Actor, role: Role | None = None) -> list[User]:
    actor.require(Role.admin)
    stmt = _user_query().order_by(User.id)
    if role is not None:
        stmt = stmt.where(User.role == role)
    users = list((await uow.session.scalars(stmt)).all())
    audit.record(uow, actor, "user.list", "user", "", role=role.value if role else None)
    return users
