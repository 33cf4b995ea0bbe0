"""Retention runs: choose the cases whose period ran out (domain), delete their objects from
the store, then anonymise them (domain), one case per transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from server.domain import retention
from server.runtime import Domain
from uploads.storage import ObjectWriter

log = logging.getLogger("yunbang.retention")


@dataclass
class Report:
    days: float
    dry_run: bool
    cases: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"retention_days": self.days, "dry_run": self.dry_run, "cases": self.cases,
                "documents": sum(c["documents"] for c in self.cases)}


class Retention:
    def __init__(self, domain: Domain, store: ObjectWriter, *, every_seconds: float = 3600) -> None:
        self.domain, self.store, self.every = domain, store, every_seconds
        self._last: float | None = None

    async def run(self, *, dry_run: bool = False, limit: int = 200) -> Report:
        days = self.domain.settings.retention_days
        report = Report(days, dry_run)
        if days <= 0:
            return report
        async with self.domain.unit(write=False) as uow:
            cases = await retention.due(uow, days, limit=limit)
        for case in cases:
            report.cases.append(case.as_dict())
            if dry_run:
                continue
            for key in case.object_keys:
                await self.store.delete(key)
            async with self.domain.unit() as uow:
                await retention.purge(uow, case)
        if cases and not dry_run:
            log.info("retention: %d closed cases anonymised, %d documents deleted", len(cases), report.as_dict()["documents"])
        return report

    async def housekeeping(self) -> int:
        """The monitor's chore: one pass an hour at most."""
        now = self.domain.clock.now().timestamp()
        if self.domain.settings.retention_days <= 0 or (self._last is not None and now - self._last < self.every):
            return 0
        self._last = now
        return len((await self.run()).cases)
