"""统计报表 in the browser: after the day of tests/test_reports.py, the district's supervisor opens
the reports page from the header, sees the week's figures against last year's in the cards, the
table and an ECharts chart (drawn as SVG: its axis names the departments), and downloads the
Excel export, which openpyxl opens with the same figures."""

from __future__ import annotations

import io
from pathlib import Path

from openpyxl import load_workbook
from playwright.async_api import Browser, expect

from tests.conftest import Platform
from tests.test_reports import play_the_story
from tests.web import browser, database_url, log_in, person, screenshot, settings  # noqa: F401  (fixtures of every browser test)


async def test_the_supervisor_reads_the_report_with_a_chart_and_downloads_the_xlsx(
        platform: Platform, browser: Browser) -> None:
    await play_the_story(platform)
    _, page = await person(browser, platform, viewport={"width": 1440, "height": 900})
    await log_in(page, "supervisor1")
    await page.wait_for_url("**/app/wall")
    await page.click("[data-testid=nav-reports]")
    await page.wait_for_url("**/app/reports")
    await expect(page.locator("[data-testid=report-periods]")).to_contain_text("2026年11月")

    await page.locator("[data-testid=report-period] [data-period=week]").click()
    await expect(page.locator("[data-testid=report-periods]")).to_contain_text("2026年第48周")
    await expect(page.locator("[data-testid=report-periods]")).to_contain_text("2025-11-24")
    tickets = page.locator("[data-testid=report-card][data-metric=tickets]")
    await expect(tickets.locator(".value")).to_have_text("5")
    await expect(tickets).to_contain_text("+400.0%")
    await expect(page.locator("[data-testid=report-card][data-metric=wait_p90_s] .value")).to_have_text("40分30秒")
    await expect(page.locator("[data-testid=report-card][data-metric=good_rate] .value")).to_have_text("66.7%")
    total = page.locator("[data-testid=report-row].total")
    await expect(total.locator("td").first).to_have_text("合计")
    await expect(total.locator("[data-metric=served]")).to_have_text("3")
    await expect(page.locator("[data-testid=report-row]", has_text="社保").locator("[data-metric=transfers]")).to_have_text("1")

    chart = page.locator("[data-testid=report-chart] svg")
    await expect(chart).to_have_count(1)
    await expect(chart.locator("text", has_text="民政")).to_have_count(1)
    await expect(chart.locator("text", has_text="2026年第48周")).to_have_count(1)  # the legend
    assert await chart.locator("path").count() > 4  # axes and bars
    await expect(page.locator("[data-testid=report-trend] svg text", has_text="周一")).to_have_count(1)
    await expect(page.locator("[data-testid=report-pending]")).to_have_count(0)  # every metric is counted now
    await page.wait_for_timeout(500)  # the charts' entry animation
    await screenshot(page, "supervisor-reports")

    async with page.expect_download() as info:
        await page.click("[data-testid=export-xlsx]")
    download = await info.value
    assert download.suggested_filename == "统计报表_部门_周_2026-W48.xlsx"
    book = load_workbook(io.BytesIO(Path(await download.path()).read_bytes()))  # the path has no .xlsx
    rows = list(book["统计报表"].iter_rows(values_only=True))
    header, last = rows[0], rows[-1]
    assert header[:3] == ("部门", "取号量本期", "取号量去年同期")
    assert last[0] == "合计" and last[1] == 5 and last[2] == 1
    assert last[header.index("等候时长P90（秒）本期")] == 2430
    assert "2026年第48周" in str(book["说明"]["B3"].value)
