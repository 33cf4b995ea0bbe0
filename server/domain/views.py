"""One payload shape per thing, used by every handler and event that shows it."""

from __future__ import annotations

from typing import Any

from server.domain.personal import mask_name
from server.models import CloudWindow, Department, Material, ServiceItem, Situation, Ticket


def department_view(d: Department) -> dict[str, Any]:
    return {"id": d.id, "code": d.code, "name": d.name}


def window_view(w: CloudWindow) -> dict[str, Any]:
    return {
        "id": w.id,
        "name": w.name,
        "centre_id": w.centre_id,
        "active": w.active,
        "tidal": w.tidal,
        "opened_at": w.opened_at.isoformat() if w.opened_at else None,
        "closes_at": w.closes_at.isoformat() if w.closes_at else None,
        "closed_at": w.closed_at.isoformat() if w.closed_at else None,
        "opened_by_id": w.opened_by_id,
        "department_ids": sorted(d.id for d in w.departments),
    }


def material_view(m: Material) -> dict[str, Any]:
    return {"id": m.id, "name": m.name, "required": m.required, "note": m.note}


def situation_view(s: Situation) -> dict[str, Any]:
    """办理情形 — with the answers it is for, its checklist, time limit, fee and pickup place."""
    return {
        "id": s.id,
        "item_id": s.item_id,
        "name": s.name,
        "conditions": dict(s.conditions),
        "materials": [material_view(m) for m in s.materials],
        "time_limit_days": s.time_limit_days,
        "fee": s.fee,
        "pickup": s.pickup,
        "active": s.active,
    }


def item_view(item: ServiceItem, *, inactive_situations: bool = False) -> dict[str, Any]:
    """An item with its general checklist, its questions and its (active) situations."""
    return {
        "id": item.id,
        "code": item.code,
        "name": item.name,
        "initials": item.initials,
        "description": item.description,
        "department_id": item.department_id,
        "level": item.level.value,
        "active": item.active,
        "produces": list(item.produces or []),
        "materials": [material_view(m) for m in item.materials],
        "questions": [{"id": q.id, "text": q.text, "options": list(q.options)} for q in item.questions],
        "situations": [situation_view(s) for s in item.situations if s.active or inactive_situations],
    }


def resident_view(resident: dict[str, Any] | None, *, personal: bool) -> dict[str, Any]:
    """The resident as a list, an event or a page shows them: ID number and phone always masked;
    the name and note only for those serving the case (``personal``), else the name masked."""
    r = resident or {}
    id_number, phone = r.get("id_number_masked"), r.get("phone_masked")
    view: dict[str, Any] = {"name": r.get("name", "") if personal else mask_name(r.get("name", "")), "masked": True}
    if id_number:
        view["id_number"] = id_number
    if phone:
        view["phone"] = phone
    if personal and r.get("note"):
        view["note"] = r["note"]
    return view


def ticket_view(t: Ticket, *, personal: bool, **extra: Any) -> dict[str, Any]:
    """One ticket. ``personal``: the reader serves the case (its worker or clerk)."""

    def iso(v: Any) -> str | None:
        return v.isoformat() if v is not None else None

    view: dict[str, Any] = {
        "id": t.id,
        "number": t.number,
        "service_day": t.service_day.isoformat(),
        "status": t.status.value,
        "centre_id": t.centre_id,
        "department_id": t.department_id,
        "item_id": t.item_id,
        "source": t.source,
        "situation_id": t.situation_id,
        "bundle_id": t.bundle_id,
        "extension_point_id": t.extension_point_id,
        "worker_id": t.worker_id,
        "resident": resident_view(t.resident, personal=personal),
        "priority": t.priority,
        "callback": t.callback,
        "appointment_at": iso(t.appointment_at),
        "taken_at": iso(t.taken_at),
        "called_at": iso(t.called_at),
        "started_at": iso(t.started_at),
        "finished_at": iso(t.finished_at),
        "window_id": t.window_id,
        "clerk_id": t.clerk_id,
        "recalls": t.recalls,
        "transfers": t.transfers,
        "result": t.result,
        "result_note": t.result_note,
        "rating": (
            {"score": t.rating_score, "comment": t.rating_comment, "at": iso(t.rated_at)}
            if t.rating_score is not None
            else None
        ),
    }
    view.update(extra)
    return view
