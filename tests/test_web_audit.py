"""The auditor's page in the browser: after login the auditor lands on the audit trail, filters
it, and verifies its integrity; other roles are sent back to their own page."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.conftest import Platform
from tests.helpers import district_item, take
from tests.web import browser, database_url, log_in, person, screenshot, settings  # noqa: F401  (fixtures of every browser test)


async def test_auditor_reads_filters_and_verifies_the_audit_trail(platform: Platform, browser: Browser) -> None:
    worker = await platform.login("worker1")
    ticket = await take(worker, (await district_item(worker, "MZ"))["id"], "审计页群众")

    _, page = await person(browser, platform)
    await log_in(page, "auditor1")
    await page.wait_for_url("**/app/audit")
    entries = page.locator("[data-testid=audit-entries] tbody tr[data-action]")
    taken = page.locator("[data-testid=audit-entries] tr[data-action='ticket.take']")
    await expect(taken).to_have_count(1)
    await expect(taken).to_contain_text(f"#{ticket['id']}")
    await expect(taken).to_contain_text("worker1")

    await page.fill("input[data-testid=audit-actor]", "worker1")
    await page.fill("input[data-testid=audit-action]", "auth.login")
    await page.click("[data-testid=audit-search]")
    await expect(taken).to_have_count(0)
    await expect(entries.first).to_contain_text("worker1")
    assert set(await entries.evaluate_all("rows => rows.map(r => r.dataset.action)")) == {"auth.login"}

    await page.click("[data-testid=audit-verify]")
    verdict = page.locator("[data-testid=audit-verdict]")
    await expect(verdict).to_have_attribute("data-intact", "true")
    await expect(verdict).to_contain_text("审计日志完整")
    await expect(verdict).to_contain_text("链头")
    await screenshot(page, "auditor-audit-trail")

    _, other = await person(browser, platform)
    await log_in(other, "supervisor1")
    await other.wait_for_url("**/app/wall")
    await other.goto("/app/audit")
    await other.wait_for_url("**/app/wall")
    await expect(other.locator("[data-testid=audit]")).to_have_count(0)
