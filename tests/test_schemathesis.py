"""Schemathesis over /api/openapi.json, as every role and as nobody: no input gets a server
error, and every answer is one the OpenAPI document describes.

Each role is tested on the operations its role may call (everyone else's answer it with the
route's gate, 403, before reading anything); nobody (no token) on every operation. The run
is bounded (a few examples per operation and generation mode, a fixed seed, schemathesis'
examples, coverage and fuzzing phases) so the file stays within a few minutes per database;
it prints how many cases each role ran and the statuses they got.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from schemathesis.engine import Status
from schemathesis.engine import events as engine_events

from tests.conftest import Platform

# (role, demo user): the admin goes last, since its PATCH /api/users may disable accounts.
ROLES = (("worker", "worker1"), ("clerk", "clerk1"), ("expert", "expert1"), ("supervisor", "supervisor1"),
         ("auditor", "auditor1"), ("admin", "admin"))
MAX_EXAMPLES = 6
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance", "negative_data_rejection",
          "missing_required_header", "ignored_auth", "unsupported_method", "allow_header_conformance")
# Not run: positive_data_acceptance (valid input for an unknown ticket is rightly a 404) and
# the stateful ones (use_after_free, ensure_resource_availability: there is no DELETE).
SKIPPED = ("positive_data_acceptance", "use_after_free", "ensure_resource_availability")


@dataclass
class Run:
    role: str
    cases: int = 0
    seconds: float = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, other: Run) -> Run:
        self.cases += other.cases
        self.seconds += other.seconds
        self.statuses.update(other.statuses)
        self.failures += other.failures
        self.errors += other.errors
        return self


def cut(doc: dict[str, Any], keep: Any) -> dict[str, Any]:
    """The document with only the operations ``keep(operation)`` accepts."""
    paths = {path: kept for path, methods in doc["paths"].items()
             if (kept := {m: op for m, op in methods.items() if keep(op)})}
    return {**doc, "paths": paths}


def for_role(role: str) -> Any:
    # Logging out would end the token every later case of the run uses.
    return lambda op: role in op.get("x-roles", ()) and op["operationId"] != "accounts_logout"


def run(label: str, doc: dict[str, Any], base: str, token: str | None, *, coverage: bool = True,
        unexpected_methods: tuple[str, ...] = (), max_examples: int = MAX_EXAMPLES) -> Run:
    """One schemathesis engine run (examples, coverage, fuzzing; no stateful phase)."""
    config = schemathesis.Config.from_dict({
        "seed": 20261123,
        "suppress-health-check": ["all"],
        "workers": 1,
        "base-url": base,
        "headers": {"Authorization": f"Bearer {token}"} if token else {},
        "generation": {"mode": "all", "max-examples": max_examples, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False},
                   "coverage": {"enabled": coverage, "unexpected-methods": list(unexpected_methods)}},
        "checks": {name: {"enabled": name in CHECKS} for name in (*CHECKS, *SKIPPED)},
    })
    schema = schemathesis.openapi.from_dict(doc, config=config)
    result = Run(label)
    started = time.monotonic()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, engine_events.ScenarioFinished):
            result.cases += len(event.recorder.cases)
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    result.statuses[interaction.response.status_code] += 1
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        result.failures.append(f"{event.label}: {check.name}: {failure.title}: {failure.message}")
        elif isinstance(event, (engine_events.NonFatalError, engine_events.FatalError)):
            result.errors.append(str(getattr(event, "info", event)))
    result.seconds = time.monotonic() - started
    return result


@pytest.mark.timeout(900)
async def test_no_input_as_any_role_gets_a_server_error(platform: Platform, capsys: pytest.CaptureFixture[str]) -> None:
    doc = (await platform.anonymous().get("/api/openapi.json")).body
    base = platform.base
    tokens = {role: (await platform.login(username)).token for role, username in ROLES}  # before login is fuzzed

    # Nobody: the open operations in full; the others answer 401 whatever they are sent.
    nobody = (await asyncio.to_thread(run, "anonymous", cut(doc, lambda op: "security" not in op), base, None)).add(
        await asyncio.to_thread(run, "anonymous", cut(doc, lambda op: "security" in op), base, None,
                                coverage=False, max_examples=2))
    runs = [nobody]
    for role, _ in ROLES:
        # Routing answers an unknown method before anyone asks who calls: checked once, as the admin.
        runs.append(await asyncio.to_thread(run, role, cut(doc, for_role(role)), base, tokens[role],
                                            unexpected_methods=("DELETE", "PATCH", "PUT") if role == "admin" else ()))

    server_errors = sum(n for r in runs for status, n in r.statuses.items() if status >= 500)
    with capsys.disabled():  # the figures, in every run's output
        print()
        for r in runs:
            print(f"schemathesis {r.role}: {r.cases} cases in {r.seconds:.0f} s, statuses {dict(sorted(r.statuses.items()))}")
        print(f"schemathesis total: {sum(r.cases for r in runs)} cases, {server_errors} server errors")
    failures = [f"{r.role}: {f}" for r in runs for f in r.failures]
    assert server_errors == 0, "\n".join(failures[:10])
    assert not [e for r in runs for e in r.errors], [e[:500] for r in runs for e in r.errors][:5]
    assert not failures, "\n\n".join(f[:800] for f in failures[:10])
    assert all(r.cases > 0 for r in runs)
