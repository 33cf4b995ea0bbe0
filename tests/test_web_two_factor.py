"""Two-step verification in the browser: with YUNBANG_REQUIRE_2FA on, a clerk's first login
leads to enrolment (QR code, the key as text, a code from the app, recovery codes kept), and the
next login asks for the code before the clerk reaches the desk."""

from __future__ import annotations

import dataclasses

import pytest
from playwright.async_api import Browser, expect

from server.config import Settings
from server.domain import two_factor
from tests.conftest import Platform
from tests.web import (  # noqa: F401  (fixtures of every browser test)
    browser,
    database_url,
    log_in,
    person,
    require_built_client,
    screenshot,
    web_settings,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    require_built_client()
    return web_settings(settings).with_changes(login=dataclasses.replace(settings.login, require_two_factor=True))


def app_code(platform: Platform, secret: str) -> str:
    """What the clerk's authenticator app shows now (the server runs on the same manual clock)."""
    return two_factor.totp(two_factor.secret_from_text(secret), platform.clock.now().timestamp())


async def test_a_clerk_enrols_at_first_login_and_then_logs_in_with_the_code(platform: Platform, browser: Browser) -> None:
    _, page = await person(browser, platform)
    await log_in(page, "clerk1")
    await page.wait_for_url("**/app/2fa")
    await expect(page.locator("[data-testid=totp-required]")).to_be_visible()
    await expect(page.locator("[data-testid=reconnecting]")).to_be_hidden()  # no live connection is tried

    await page.click("[data-testid=totp-start]")
    qr = page.locator("[data-testid=totp-qr]")
    await expect(qr).to_be_visible()
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 100")
    secret = (await page.locator("[data-testid=totp-secret]").inner_text()).strip()
    await screenshot(page, "clerk-two-factor-enrol")
    right = app_code(platform, secret)
    await page.fill("input[data-testid=totp-code]", "000000" if right != "000000" else "111111")
    await page.click("[data-testid=totp-confirm]")
    await expect(page.locator("[data-testid=totp-error]")).to_contain_text("验证码不正确")
    await page.fill("input[data-testid=totp-code]", right)
    await page.click("[data-testid=totp-confirm]")

    codes = page.locator("[data-testid=recovery-codes] li")
    await expect(codes).to_have_count(10)
    await screenshot(page, "clerk-two-factor-recovery-codes")
    await expect(page.locator("[data-testid=codes-saved]")).to_be_disabled()
    await page.click("[data-testid=codes-saved-check]")
    await page.click("[data-testid=codes-saved]")
    await page.wait_for_url("**/app/clerk")
    await expect(page.locator("[data-testid=window-name], [data-testid=window-choice]").first).to_be_visible()

    await page.get_by_role("button", name="退出登录").click()
    await page.wait_for_url("**/app/login")
    platform.clock.advance(seconds=30)  # the next code: the one used to confirm is spent
    await log_in(page, "clerk1")
    await expect(page.locator("[data-testid=otp-step]")).to_be_visible()
    await screenshot(page, "login-two-factor-code")
    await page.fill("input[data-testid=otp]", app_code(platform, secret))
    await page.click("[data-testid=login]")
    await page.wait_for_url("**/app/clerk")
    await expect(page.locator("[data-testid=window-name], [data-testid=window-choice]").first).to_be_visible()
    await expect(page.locator("[data-testid=nav-2fa]")).to_be_visible()
