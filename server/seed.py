"""``yunbang seed --demo``: a district shaped like Haishu's, its catalogue and demo accounts.

Idempotent: everything is looked up by its unique name, code or username first, so seeding
twice changes nothing. The demo password exists only here and is printed by ``make run``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from server import demo_data, demo_situations
from server.db import Database
from server.domain.logins import hash_password
from server.domain.personal import Sealer, mask_phone
from server.models import (
    Base,
    Bundle,
    BundleItem,
    Centre,
    CentreLevel,
    Certificate,
    CertificateType,
    CloudWindow,
    Department,
    ExtensionPoint,
    ItemQuestion,
    Material,
    Role,
    ServiceItem,
    Situation,
    User,
)

DEMO_PASSWORD = "demo12345"
GAOQIAO = "高桥镇便民服务中心"
M = TypeVar("M", bound=Base)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: Role
    display_name: str
    where: str


class Binding(TypedDict, total=False):
    """Where a demo account works: its extension point, windows, departments, centres."""

    point: str
    windows: list[CloudWindow]
    specialties: list[str]
    expert_departments: list[Department]
    departments: list[Department]
    centres: list[Centre]


async def seed_demo(db: Database) -> dict[str, int]:
    """Create what is missing; return how many rows of each kind were added."""
    added: dict[str, int] = {}

    def count(kind: str) -> None:
        added[kind] = added.get(kind, 0) + 1

    async with db.write() as s:
        district = await _get_or_add(s, Centre, count, name=demo_data.DISTRICT_CENTRE,
                                     defaults={"level": CentreLevel.district})
        towns: dict[str, Centre] = {}
        for name in demo_data.TOWN_CENTRES:
            towns[name] = await _get_or_add(s, Centre, count, name=name,
                                            defaults={"level": CentreLevel.town, "parent_id": district.id})
        points: dict[str, ExtensionPoint] = {}
        for town, names in demo_data.EXTENSION_POINTS.items():
            for name in names:
                points[name] = await _get_or_add(s, ExtensionPoint, count, name=name,
                                                 defaults={"centre_id": towns[town].id})
        departments: dict[str, Department] = {}
        for code, name in demo_data.DEPARTMENTS:
            departments[code] = await _get_or_add(s, Department, count, code=code, defaults={"name": name})
        for spec in demo_data.ITEMS:
            existing = await s.scalar(select(ServiceItem).where(ServiceItem.code == spec["code"]))
            if existing is None:
                s.add(ServiceItem(
                    code=spec["code"], name=spec["name"], initials=spec.get("initials", ""),
                    description=spec.get("description", ""), department_id=departments[spec["department"]].id,
                    level=CentreLevel(spec["level"]), active=True, produces=demo_data.PRODUCES.get(spec["code"], []),
                    materials=[Material(position=i, name=m["name"], required=m["required"], note=m.get("note", ""))
                               for i, m in enumerate(spec["materials"])],
                ))
                count("items")
            elif not existing.produces and spec["code"] in demo_data.PRODUCES:  # seeded before items issued
                existing.produces = demo_data.PRODUCES[spec["code"]]
        await s.flush()
        for code, spec in demo_situations.SITUATIONS.items():
            await _add_situations(s, code, spec, count)
        for spec in demo_data.BUNDLES:
            if await s.scalar(select(Bundle.id).where(Bundle.code == spec["code"])) is None:
                ids = {code: await s.scalar(select(ServiceItem.id).where(ServiceItem.code == code))
                       for code in spec["items"]}
                s.add(Bundle(code=spec["code"], name=spec["name"], description=spec["description"], active=True,
                             items=[BundleItem(item_id=ids[code], position=i) for i, code in enumerate(spec["items"])]))
                count("bundles")
        for spec in demo_data.CERTIFICATE_TYPES:
            if await s.scalar(select(CertificateType.id).where(CertificateType.name == spec["name"])) is None:
                item_id = await s.scalar(select(ServiceItem.id).where(ServiceItem.code == spec["item"]))
                s.add(CertificateType(name=spec["name"], item_id=item_id, reminder_days=spec["reminder_days"],
                                      active=True, created_at=datetime.now(UTC)))
                count("certificate_types")
        await s.flush()

        async def window(name: str, centre: Centre, codes: list[str]) -> CloudWindow:
            found = await s.scalar(
                select(CloudWindow).options(selectinload(CloudWindow.departments))
                .where(CloudWindow.name == name, CloudWindow.centre_id == centre.id)
            )
            if found is None:
                found = CloudWindow(name=name, centre_id=centre.id, active=True, tidal=False,
                                    departments=[departments[c] for c in codes])
                s.add(found)
                count("windows")
            return found

        all_codes = [code for code, _ in demo_data.DEPARTMENTS]
        short = {code: name for code, name in demo_data.DEPARTMENTS}
        w1 = await window("区级综合云窗口1（民政·社保）", district, ["MZ", "SB"])
        w2 = await window("区级综合云窗口2（公安·市场监管）", district, ["GA", "SC"])
        rest = [c for c in all_codes if c not in ("MZ", "SB", "GA", "SC")]
        w3 = await window("区级综合云窗口3（" + "·".join(short[c] for c in rest) + "）", district, rest)
        for code in all_codes:
            await window(f"区级{short[code]}云窗口", district, [code])
        town_windows: dict[tuple[str, str], CloudWindow] = {}
        for town_name, centre in towns.items():
            for code in all_codes:
                town_windows[(town_name, code)] = await window(
                    f"{town_name.removesuffix('便民服务中心')}{short[code]}云窗口", centre, [code]
                )
        await s.flush()

        point_names = list(points)
        gaoqiao_points = demo_data.EXTENSION_POINTS.get(GAOQIAO) or point_names
        worker1_point = next((p for p in gaoqiao_points if "梁祝" in p), gaoqiao_points[0])
        other_towns = [t for t in demo_data.EXTENSION_POINTS if t != GAOQIAO]
        accounts: list[tuple[str, Role, str, Binding]] = [
            ("worker1", Role.worker, "梁祝村便民服务点 王芳", {"point": worker1_point}),
            ("worker2", Role.worker, "社区工作人员 李强", {"point": demo_data.EXTENSION_POINTS[other_towns[0]][0]}),
            ("worker3", Role.worker, "社区工作人员 陈静", {"point": demo_data.EXTENSION_POINTS[other_towns[-1]][0]}),
            ("clerk1", Role.clerk, "区云窗口 张敏", {"windows": [w1]}),
            ("clerk2", Role.clerk, "区云窗口 刘洋", {"windows": [w2]}),
            ("clerk3", Role.clerk, "区云窗口 赵磊", {"windows": [w3]}),
            ("clerk4", Role.clerk, "高桥镇云窗口 周婷",
             {"windows": [town_windows[(GAOQIAO, "MZ")], town_windows[(GAOQIAO, "SB")]]}),
            ("expert1", Role.expert, "专家 孙建国", {"specialties": ["民政", "社会救助", "养老服务"],
                                                    "expert_departments": [departments["MZ"], departments["CL"]]}),
            ("expert2", Role.expert, "专家 吴晓燕", {"specialties": ["社保", "医保", "退休审批"],
                                                    "expert_departments": [departments["SB"], departments["YB"]]}),
            ("expert3", Role.expert, "专家 郑伟", {"specialties": ["市场监管", "个体工商户", "食品经营"],
                                                  "expert_departments": [departments["SC"]]}),
            ("supervisor1", Role.supervisor, "大厅管理 钱主任",
             {"departments": list(departments.values()), "centres": [district]}),
            ("supervisor2", Role.supervisor, "高桥镇中心 孔主任",
             {"departments": [departments["MZ"], departments["SB"]], "centres": [towns[GAOQIAO]]}),
            ("admin", Role.admin, "系统管理员", {}),
            ("auditor1", Role.auditor, "审计员 何审计", {}),
        ]
        for username, role, display, binding in accounts:
            if await s.scalar(select(User.id).where(User.username == username)) is not None:
                continue
            point = points[binding["point"]].id if "point" in binding else None
            s.add(User(
                username=username, display_name=display, password_hash=await hash_password(DEMO_PASSWORD),
                role=role, active=True, extension_point_id=point, specialties=binding.get("specialties", []),
                created_at=datetime.now(UTC), windows=binding.get("windows", []),
                departments=binding.get("departments", []), centres=binding.get("centres", []),
                expert_departments=binding.get("expert_departments", []),
            ))
            count("users")
    return added


async def _add_situations(s: AsyncSession, code: str, spec: dict[str, Any], count: Callable[[str], None]) -> None:
    """An item's demo questions and situations, unless it has some already (an admin's own)."""
    item = await s.scalar(select(ServiceItem).where(ServiceItem.code == code))
    assert item is not None
    if await s.scalar(select(Situation.id).where(Situation.item_id == item.id).limit(1)) is not None:
        return
    if await s.scalar(select(ItemQuestion.id).where(ItemQuestion.item_id == item.id).limit(1)) is not None:
        return
    questions = [ItemQuestion(item_id=item.id, position=i, text=text, options=list(options))
                 for i, (text, options) in enumerate(spec["questions"])]
    s.add_all(questions)
    await s.flush()
    ids = {q.text: str(q.id) for q in questions}
    for i, sit in enumerate(spec["situations"]):
        s.add(Situation(
            item_id=item.id, position=i, name=sit["name"], active=True,
            conditions={ids[q]: option for q, option in sit["when"].items()},
            time_limit_days=sit["days"], fee=sit["fee"], pickup=sit["pickup"],
            materials=[Material(item_id=item.id, position=j, name=m["name"], required=m["required"],
                                note=m.get("note", "")) for j, m in enumerate(sit["materials"])],
        ))
        count("situations")
    await s.flush()


async def _get_or_add(session: AsyncSession, model: type[M], count: Callable[[str], None], *,
                      defaults: dict[str, Any], **unique: str) -> M:
    found = await session.scalar(select(model).filter_by(**unique))
    if found is None:
        found = model(**unique, **defaults)
        session.add(found)
        await session.flush()
        count(model.__tablename__)
    return found


async def seed_demo_certificates(db: Database, sealer: Sealer, today: date) -> int:
    """Demo certificates expiring in the coming weeks (counted from ``today``), so the demo's
    monitor texts reminders at once. Only ``yunbang seed --demo``: the tests' databases have the
    types but no holders, and set up their own. Returns how many were added."""
    added = 0
    async with db.write() as s:
        kinds = {t.name: t.id for t in (await s.scalars(select(CertificateType))).all()}
        now = datetime.now(UTC)
        for spec in demo_data.DEMO_CERTIFICATES:
            type_id = kinds.get(spec["type"])
            if type_id is None or await s.scalar(select(Certificate.id).where(
                    Certificate.type_id == type_id, Certificate.number == spec["number"])) is not None:
                continue
            s.add(Certificate(type_id=type_id, number=spec["number"], holder_name=spec["holder"],
                              holder_sealed=sealer.seal({"phone": spec["phone"]}),
                              phone_hash=sealer.search_hash(f"phone:{spec['phone']}"),
                              phone_masked=mask_phone(spec["phone"]) or "", id_number_hash=None, id_number_masked=None,
                              expires_on=today + timedelta(days=spec["in_days"]), imported_at=now, updated_at=now))
            added += 1
    return added


async def seed_demo_connections(db: Database, now: datetime) -> int:
    """When the demo's extension points last connected (counted back from ``now``), so the network
    wall (docs/network.md) has a few points silent for more than a week among ones used in the
    last two days, instead of 288 never connected. Only ``yunbang seed --demo``, and only while no
    point has ever connected: the tests' databases set up their own. Returns how many were set."""
    set_ = 0
    async with db.write() as s:
        if await s.scalar(select(ExtensionPoint.id).where(ExtensionPoint.last_connected_at.is_not(None)).limit(1)):
            return 0
        points = (await s.scalars(select(ExtensionPoint).where(ExtensionPoint.last_connected_at.is_(None))
                                  .order_by(ExtensionPoint.id))).all()
        for i, point in enumerate(points):
            if i % 97 == 41:
                continue  # never connected yet
            days_silent = 8 + i % 23 if i % 23 == 7 else 0
            point.last_connected_at = now - timedelta(days=days_silent, hours=(i * 37) % 44, minutes=(i * 13) % 60)
            set_ += 1
    return set_


def demo_accounts_text() -> str:
    return (
        "演示账号（密码均为 demo12345）/ demo accounts, password demo12345:\n"
        "  worker1–worker3   社区工作人员 community workers (worker1 at 高桥镇梁祝村)\n"
        "  clerk1            区级云窗口（民政·社保） district window for 民政 + 社保\n"
        "  clerk2, clerk3    区级综合云窗口 other district windows\n"
        "  clerk4            高桥镇民政/社保云窗口 town windows at 高桥镇\n"
        "  expert1–expert3   专家库 experts\n"
        "  supervisor1       大厅管理（全区全部部门） supervisor of every department, whole district\n"
        "  supervisor2       高桥镇中心负责人（民政、社保） supervisor at 高桥镇 only\n"
        "  admin             系统管理员 administrator (no personal data, no audit log)\n"
        "  auditor1          审计员 auditor (reads the audit log, nothing else)"
    )
