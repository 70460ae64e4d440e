"""The supervisory page in Debian's chromium (Playwright, headless), against a real twin, catalog,
brokers and historian. Never `playwright install`: the browser is the Debian package."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() or shutil.which("chromium") is None,
        reason="Debian's chromium is not installed (./dev installs it)",
    ),
]


async def confirm(page, token: str | None = None) -> None:
    dialog = page.get_by_test_id("confirm-dialog")
    await dialog.wait_for(state="visible")
    if token is not None and await page.get_by_test_id("token-input").is_visible():
        await page.get_by_test_id("token-input").fill(token)
    await page.get_by_test_id("confirm-ok").click()


async def test_operator_sees_devices_injects_fault_and_restores(grid_stack, artifacts_dir: Path):
    from playwright.async_api import async_playwright, expect

    svc, _twin, doc = grid_stack
    token = svc.o.admin_token
    meters = [p.device_id for p in doc.placements]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            await page.goto(svc.url)
            summary = page.get_by_test_id("device-summary")
            await expect(summary).to_have_text(
                f"devices: {len(meters)}/{len(meters)} online", timeout=10_000
            )
            for m in meters:
                await expect(page.get_by_test_id(f"device-{m}")).to_have_attribute(
                    "data-status", "connected"
                )
            await expect(page.get_by_test_id("supply-flag")).to_have_attribute("data-state", "ok")
            await expect(page.get_by_test_id("node-SS-A4")).to_have_attribute(
                "data-energised", "true"
            )

            # inject a fault on the cable between SS-A2 and SS-A3, from the page (the token is asked once)
            await page.get_by_test_id("fault-branch").select_option("L-A2-A3")
            await page.get_by_test_id("inject-fault").click()
            await confirm(page, token)
            await expect(page.get_by_test_id("branch-L-A2-A3")).to_have_attribute(
                "data-state", "faulted", timeout=5_000
            )
            # protection trips the feeder breaker: the whole of feeder A goes dark, feeder B stays
            await expect(page.get_by_test_id("switch-CB-A")).to_have_attribute(
                "data-state", "open", timeout=5_000
            )
            for node in ("SS-A1", "SS-A3", "SS-A6"):
                await expect(page.get_by_test_id(f"node-{node}")).to_have_attribute(
                    "data-energised", "false"
                )
            await expect(page.get_by_test_id("node-SS-B3")).to_have_attribute(
                "data-energised", "true"
            )
            await expect(page.get_by_test_id("supply-flag")).to_have_attribute(
                "data-state", "outage"
            )
            await page.screenshot(path=str(artifacts_dir / "dashboard-fault.png"))

            # isolate the faulted section, reclose the breaker, back-feed the rest over the tie
            for sw in ("SW-A2-out", "SW-A3-in", "CB-A", "TIE-AB"):
                await page.get_by_test_id(f"switch-{sw}").click()
                await confirm(page)
                want = "open" if sw.startswith("SW-") else "closed"
                await expect(page.get_by_test_id(f"switch-{sw}")).to_have_attribute(
                    "data-state", want, timeout=5_000
                )
            for node in ("SS-A1", "SS-A2", "SS-A3", "SS-A4", "SS-A6"):
                await expect(page.get_by_test_id(f"node-{node}")).to_have_attribute(
                    "data-energised", "true", timeout=5_000
                )
            # the faulted cable itself stays dark
            await expect(page.get_by_test_id("node-SS-A2-out")).to_have_attribute(
                "data-energised", "false"
            )
            await expect(page.get_by_test_id("events")).to_contain_text(
                "TIE-AB close by the operator"
            )
            await page.screenshot(path=str(artifacts_dir / "dashboard-restored.png"))
            assert not errors, errors
        except AssertionError:
            await page.screenshot(path=str(artifacts_dir / "dashboard-failure.png"))
            print("action-result:", await page.get_by_test_id("action-result").text_content())
            raise
        finally:
            await browser.close()
