"""The supervisory page on the whole demo (subprocess `gridedge demo --no-scenario`): the operator
injects a fault from the page and watches FLISR locate it, isolate it and restore the healthy
part, in Debian's chromium (Playwright, headless)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.dashboard.test_browser import ARGS, CHROMIUM, confirm
from tests.demo.running import start_demo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (./dev installs it)"
    ),
]


@pytest.fixture
def demo(tmp_path: Path):
    running = start_demo(tmp_path)
    try:
        token = (tmp_path / "data" / "admin-token").read_text().strip()
        yield running.url, token, running.text
    finally:
        running.proc.send_signal(signal.SIGINT)
        running.proc.communicate(timeout=60)


async def test_fault_from_the_page_is_located_isolated_and_restored_by_flisr(
    demo, artifacts_dir: Path
):
    from playwright.async_api import async_playwright, expect

    url, token, text = demo
    if "FLISR          not available" in text:
        pytest.fail("FLISR is not in this build: the page cannot show automatic restoration")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            await page.goto(url)
            # five devices: three meters, the switchgear gateway, the FLISR service host
            await expect(page.get_by_test_id("device-summary")).to_have_text(
                "devices: 5/5 online", timeout=30_000
            )
            for m in ("M1", "M2", "M-B"):
                await expect(page.get_by_test_id(f"device-{m}")).to_contain_text(
                    "a ", timeout=15_000
                )  # phase flags
            await expect(page.get_by_test_id("supply-flag")).to_have_attribute("data-state", "ok")
            # the meters' fault detectors settle on healthy readings (as the headless scenario does)
            await page.wait_for_timeout(8000)

            await page.get_by_test_id("fault-branch").select_option("L-A2-A3")
            await page.get_by_test_id("fault-kind").select_option("1ph")  # seed 001's case
            await page.get_by_test_id("inject-fault").click()
            await confirm(page, token)
            await expect(page.get_by_test_id("branch-L-A2-A3")).to_have_attribute(
                "data-state", "faulted", timeout=5_000
            )
            # FLISR: the nearest switches open, the breaker recloses, the tie closes
            for sw, state in (
                ("SW-A2-out", "open"),
                ("SW-A3-in", "open"),
                ("CB-A", "closed"),
                ("TIE-AB", "closed"),
            ):
                await expect(page.get_by_test_id(f"switch-{sw}")).to_have_attribute(
                    "data-state", state, timeout=15_000
                )
            for node in ("SS-A1", "SS-A2", "SS-A3", "SS-A4", "SS-A5", "SS-A6", "SS-A4-LV"):
                await expect(page.get_by_test_id(f"node-{node}")).to_have_attribute(
                    "data-energised", "true", timeout=5_000
                )
            await expect(page.get_by_test_id("node-SS-A2-out")).to_have_attribute(
                "data-energised", "false"
            )
            summary = page.get_by_test_id("flisr-summary")
            await expect(summary).to_contain_text("outcome: restored", timeout=10_000)
            await expect(summary).to_contain_text("located: L-A2-A3")
            assert await page.get_by_test_id("flisr-step").count() >= 4
            await expect(page.get_by_test_id("latency")).to_contain_text("FLISR")
            # and it lasts: no second, spurious FLISR run undoes it
            for _ in range(10):
                await page.wait_for_timeout(500)
                for node in ("SS-A1", "SS-A6", "SS-B3"):
                    await expect(page.get_by_test_id(f"node-{node}")).to_have_attribute(
                        "data-energised", "true", timeout=100
                    )
            # the operator looks at M2's voltages: the outage and the restoration are in the chart
            await page.get_by_test_id("device-M2").click()
            await expect(page.locator("#chart-device")).to_contain_text("M2")
            await page.wait_for_timeout(3500)  # next chart refresh
            assert await page.locator("#chart polyline").count() == 3
            await page.screenshot(path=str(artifacts_dir / "dashboard-flisr.png"))
            assert not errors, errors
        except AssertionError:
            await page.screenshot(path=str(artifacts_dir / "dashboard-flisr-failure.png"))
            raise
        finally:
            await browser.close()
