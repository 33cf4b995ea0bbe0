"""办理情形 (颗粒化) — an item's situations and the questions that lead to them.

An item may ask a few questions (首次申领 / 换领 / 补领? 本人 / 代办?), each with a handful of
options. Each situation names the answers it is for (``conditions``: question id → option; a
question it does not name does not matter to it) and carries its own checklist, time limit, fee
and place of pickup. Answers lead to at most one active situation: two active situations of an
item may never both fit one set of answers (saving one that would is refused), so resolving is
a lookup, never a guess. An item without situations keeps its general checklist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from server.domain import audit, catalog
from server.domain.context import Actor, Uow
from server.domain.errors import Conflict, Invalid, NotFound
from server.models import (
    ItemQuestion,
    Material,
    Role,
    ServiceItem,
    Situation,
)

MAX_QUESTIONS = 6
MAX_OPTIONS = 8


def fits(situation: Situation, answers: Mapping[str, str]) -> bool:
    """Whether these answers lead to this situation: every answer it names is given, and as named."""
    return all(answers.get(q) == option for q, option in situation.conditions.items())


def overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether one set of answers could fit both conditions: no question they both name tells them apart."""
    return all(a[q] == b[q] for q in a.keys() & b.keys())


def _check_answers(item: ServiceItem, answers: Mapping[str, str], *, what: str) -> None:
    """Every answer names one of the item's questions and one of that question's options."""
    questions = {str(q.id): q for q in item.questions}
    for qid, option in answers.items():
        question = questions.get(qid)
        if question is None:
            raise Invalid("unknown_question", f"{what}：该事项没有这个问题", question_id=qid)
        if option not in question.options:
            raise Invalid("unknown_option", f"{what}：“{question.text}”没有“{option}”这个选项",
                          question_id=qid, option=option, options=question.options)


async def resolve(uow: Uow, item_id: int, answers: Mapping[str, str]) -> Situation:
    """The one active situation these answers lead to (422 ``situation_not_found`` for none)."""
    item = await catalog.get_item(uow, item_id)
    if not item.active:
        raise NotFound("item_not_found", "事项不存在", item_id=item_id)
    _check_answers(item, answers, what="回答有误")
    found = [s for s in item.situations if s.active and fits(s, answers)]
    if len(found) != 1:  # several cannot happen while saving keeps situations apart; none can
        raise Invalid("situation_not_found", "没有与这些回答对应的办理情形，请核对回答或咨询云窗口",
                      answers=dict(answers), matches=len(found))
    return found[0]


async def of_item(uow: Uow, item: ServiceItem, situation_id: int | None) -> Situation | None:
    """The situation a ticket or a link names: an active one of this item (422 ``unknown_situation``)."""
    if situation_id is None:
        return None
    situation = await uow.session.get(Situation, situation_id)
    if situation is None or situation.item_id != item.id or not situation.active:
        raise Invalid("unknown_situation", f"“{item.name}”没有这个办理情形", item_id=item.id,
                      situation_id=situation_id)
    return situation


async def get_situation(uow: Uow, situation_id: int) -> Situation:
    situation = (await uow.session.scalars(
        select(Situation).options(selectinload(Situation.materials)).where(Situation.id == situation_id)
    )).first()
    if situation is None:
        raise NotFound("situation_not_found", "办理情形不存在", situation_id=situation_id)
    return situation


async def save_questions(uow: Uow, actor: Actor, item_id: int, questions: Sequence[Mapping[str, Any]]) -> ServiceItem:
    """Replace an item's questions: those given with an ``id`` keep it (situations name them by
    it), the others are new; a question or option a situation still names may not go."""
    actor.require(Role.admin)
    item = await catalog.get_item(uow, item_id)
    if len(questions) > MAX_QUESTIONS:
        raise Invalid("too_many_questions", f"每个事项最多 {MAX_QUESTIONS} 个问题")
    existing = {q.id: q for q in item.questions}
    given = [spec["id"] for spec in questions if spec.get("id") is not None]
    if len(given) != len(set(given)):
        raise Invalid("question_duplicate", "同一个问题出现了两次")
    kept: list[ItemQuestion] = []
    for i, spec in enumerate(questions):
        text = str(spec["text"]).strip()
        options = [str(o).strip() for o in spec["options"]]
        if not text:
            raise Invalid("question_text_required", f"第 {i + 1} 个问题没有内容")
        if len(options) < 2 or len(options) > MAX_OPTIONS or len(set(options)) != len(options) or "" in options:
            raise Invalid("question_options_invalid",
                          f"“{text}”需要 2 至 {MAX_OPTIONS} 个互不相同的选项", question=text)
        qid = spec.get("id")
        if qid is None:
            question = ItemQuestion(item_id=item.id)
        elif qid in existing:
            question = existing[qid]
        else:
            raise Invalid("unknown_question", "该事项没有这个问题", question_id=qid)
        question.position, question.text, question.options = i, text, options
        kept.append(question)
    offered = {str(q.id): set(q.options) for q in kept if q.id is not None}
    for situation in item.situations:
        for qid, option in situation.conditions.items():
            if option not in offered.get(qid, set()):
                gone = existing.get(int(qid))
                raise Conflict("question_in_use",
                               f"办理情形“{situation.name}”仍以“{gone.text if gone else qid}”的回答“{option}”为条件，"
                               "请先修改该情形", situation_id=situation.id, question_id=qid, option=option)
    item.questions = kept
    await uow.session.flush()
    audit.record(uow, actor, "item.questions", "item", item.id, questions=[q.text for q in kept])
    return await catalog.get_item(uow, item.id)


async def save_situation(
    uow: Uow,
    actor: Actor,
    *,
    item_id: int | None = None,
    situation_id: int | None = None,
    name: str,
    conditions: Mapping[str, str],
    materials: Sequence[Mapping[str, Any]],
    time_limit_days: int | None = None,
    fee: str = "",
    pickup: str = "",
    active: bool = True,
) -> Situation:
    """Create a situation of ``item_id``, or change ``situation_id``. Its checklist lines keep
    their ids by position (documents filed under them stay filed); a line some case's document
    is filed under may not be dropped. An active situation may not overlap another active one."""
    actor.require(Role.admin)
    if situation_id is not None:
        situation = await get_situation(uow, situation_id)
        item_id = situation.item_id
    assert item_id is not None
    item = await catalog.get_item(uow, item_id)
    name = name.strip()
    if not name:
        raise Invalid("situation_name_required", "请填写情形名称")
    _check_answers(item, conditions, what="情形条件有误")
    if not conditions and item.questions:
        raise Invalid("situation_conditions_required", "请至少选择一个回答作为该情形的条件")
    if active:
        for other in item.situations:
            if other.id != situation_id and other.active and overlap(other.conditions, conditions):
                raise Conflict("situation_overlap",
                               f"与办理情形“{other.name}”的条件重叠：同一组回答会对应两个情形，请调整条件",
                               situation_id=other.id)
    if situation_id is None:
        last = await uow.session.scalar(select(func.max(Situation.position)).where(Situation.item_id == item.id))
        position = 0 if last is None else last + 1
        situation = Situation(item_id=item.id, position=position, materials=[])
        uow.session.add(situation)
    await catalog.rewrite_lines(uow, situation.materials, materials, lambda: Material(item_id=item.id))
    situation.name, situation.conditions = name, dict(conditions)
    situation.time_limit_days, situation.fee, situation.pickup, situation.active = time_limit_days, fee, pickup, active
    await uow.session.flush()
    audit.record(uow, actor, "situation.save", "situation", situation.id, item_id=item.id, name=name, active=active)
    return await get_situation(uow, situation.id)
