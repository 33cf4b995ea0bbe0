"""Accounts: users of the roles, what each is bound to, and who is acting (``Actor``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from server.domain import audit, logins, two_factor
from server.domain.access import centre_scope
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Invalid, NotFound, Unauthorized
from server.domain.logins import hash_password
from server.domain.notify import PHONE
from server.domain.personal import mask_phone
from server.models import (
    Centre,
    CloudWindow,
    Department,
    ExtensionPoint,
    Role,
    User,
)

MIN_PASSWORD = 8


def _user_query() -> Any:
    return select(User).options(
        selectinload(User.windows).selectinload(CloudWindow.departments),
        selectinload(User.departments),
        selectinload(User.centres),
    )


async def load_user(uow: Uow, user_id: int) -> User | None:
    user: User | None = (await uow.session.scalars(_user_query().where(User.id == user_id))).first()
    return user


def actor_for(user: User, ip: str = "", session_id: str = "", centres: frozenset[int] = frozenset()) -> Actor:
    """The acting user with what they may watch. ``centres``: a supervisor's centres with every
    centre below them (``access.centre_scope``)."""
    windows = [w for w in user.windows if w.active]
    if user.role is Role.supervisor:
        departments = frozenset(d.id for d in user.departments)
        queues = frozenset((c, d) for c in centres for d in departments)
    else:
        departments = frozenset(d.id for w in windows for d in w.departments)
        queues = frozenset((w.centre_id, d.id) for w in windows for d in w.departments) if user.role is Role.clerk \
            else frozenset()
    return Actor(
        user_id=user.id,
        username=user.username,
        role=user.role,
        extension_point_id=user.extension_point_id,
        window_ids=frozenset(w.id for w in windows),
        department_ids=departments,
        ip=ip,
        centre_ids=centres if user.role is Role.supervisor else frozenset(),
        queues=queues,
        session_id=session_id,
    )


async def load_actor(uow: Uow, user_id: int, *, ip: str = "", session_id: str | None = None,
                     enrolment_ok: bool = False) -> Actor:
    """The actor behind a token: its session still open (``session_id`` None: a trusted
    internal caller), the account active, and — where a second factor is required but not yet
    enrolled — only for the few requests that enrol (``enrolment_ok``; docs/security.md)."""
    if session_id is not None:
        await logins.check_session(uow, user_id, session_id)
    user = await load_user(uow, user_id)
    if user is None or not user.active:
        raise Unauthorized("account_disabled", "账号不存在或已停用")
    if session_id is not None and not enrolment_ok and two_factor.enrolment_pending(uow.login, user):
        raise two_factor.pending_error()
    centres = await centre_scope(uow, {c.id for c in user.centres}) if user.role is Role.supervisor else frozenset()
    return actor_for(user, ip, session_id or "", centres)


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
        "centre_ids": sorted(c.id for c in user.centres),
        "mobile": user.mobile_masked if user.role is not Role.resident else None,
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
    centre_ids: list[int] | None = None,
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
        centres=[],
    )
    await _bind(uow, user, extension_point_id, window_ids, department_ids, centre_ids)
    uow.session.add(user)
    await uow.session.flush()
    audit.record(uow, actor, "user.create", "user", user.id, username=username, role=role.value)
    return user


async def checked_hash(password: str) -> str:
    """A new password's hash (computed before any transaction opens)."""
    if len(password) < MIN_PASSWORD:
        raise Invalid("password_too_short", f"密码至少 {MIN_PASSWORD} 位")
    return await hash_password(password)


async def set_password(uow: Uow, actor: Actor, user: User, password_hash: str) -> None:
    """The owner changed their password: every session of the account ends."""
    user.password_hash = password_hash
    audit.record(uow, actor, "auth.password_changed", "user", user.id)
    await logins.revoke_all(uow, user.id, "password")


async def update_user(
    uow: Uow,
    actor: Actor,
    user_id: int,
    *,
    display_name: str | None = None,
    password: str | None = None,
    active: bool | None = None,
    role: Role | None = None,
    extension_point_id: int | None = None,
    window_ids: list[int] | None = None,
    department_ids: list[int] | None = None,
    centre_ids: list[int] | None = None,
    specialties: list[str] | None = None,
    mobile: str | None = None,
) -> User:
    """Change an account. A new password, a new role or disabling end every open session of
    the account at once (its sockets are disconnected). ``mobile`` (staff: where alerts reach
    them; "" clears it) is sealed, shown masked."""
    actor.require(Role.admin)
    user = await load_user(uow, user_id)
    if user is None:
        raise NotFound("user_not_found", "用户不存在", user_id=user_id)
    changed: dict[str, Any] = {}
    if role is not None and role is not user.role:
        if user.id == actor.user_id:
            raise Conflict("cannot_change_own_role", "不能修改自己的角色")
        changed["role"] = {"from": user.role.value, "to": role.value}
        user.role = role
        user.windows, user.departments, user.centres = [], [], []
        if role is not Role.worker:
            user.extension_point_id = None
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
    if mobile is not None:
        if user.role is Role.resident:
            raise Invalid("mobile_resident", "群众账号的手机号即其登录号码，不能修改")
        mobile = mobile.strip()
        if mobile and not PHONE.match(mobile):
            raise Invalid("phone_invalid", "手机号格式不正确（11 位，以 1 开头）")
        user.phone_sealed = uow.sealer.seal({"phone": mobile}) if mobile else None
        user.mobile_masked = mask_phone(mobile) if mobile else None
        changed["mobile"] = user.mobile_masked or ""
    await _bind(uow, user, extension_point_id, window_ids, department_ids, centre_ids)
    for name, value in (("extension_point_id", extension_point_id), ("window_ids", window_ids),
                        ("department_ids", department_ids), ("centre_ids", centre_ids)):
        if value is not None:
            changed[name] = value
    audit.record(uow, actor, "user.update", "user", user.id, **changed)
    # Bindings are read again on every request; these three must end what was issued before.
    reason = "disabled" if changed.get("active") is False else "password" if "password" in changed else \
        "role" if "role" in changed else None
    if reason is not None:
        await logins.revoke_all(uow, user.id, reason)
    return user


async def _bind(
    uow: Uow,
    user: User,
    extension_point_id: int | None,
    window_ids: list[int] | None,
    department_ids: list[int] | None,
    centre_ids: list[int] | None = None,
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
    if centre_ids is not None:
        if user.role is not Role.supervisor:
            raise Invalid("centres_not_allowed", "只有部门负责人绑定中心")
        centres = list((await uow.session.scalars(select(Centre).where(Centre.id.in_(centre_ids)))).all())
        if len(centres) != len(set(centre_ids)):
            raise NotFound("centre_not_found", "中心不存在", centre_ids=centre_ids)
        user.centres = centres


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


async def list_users(uow: Uow, actor: Actor, role: Role | None = None, *,
                     extension_point_id: int | None = None) -> list[User]:
    actor.require(Role.admin)
    stmt = _user_query().order_by(User.id)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if extension_point_id is not None:
        stmt = stmt.where(User.extension_point_id == extension_point_id)
    users = list((await uow.session.scalars(stmt)).all())
    audit.record(uow, actor, "user.list", "user", "", role=role.value if role else None,
                 extension_point_id=extension_point_id)
    return users
