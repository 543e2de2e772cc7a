"""The chat page in a real headless Chromium: it streams, stops, resumes after a reload."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from openai_sse.relay import Relay
from openai_sse.testing import Fault, MockServer, Reply

from .conftest import UPSTREAM_KEY

ANSWER = " ".join(f"w{i}" for i in range(40))
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1000,700",
)


def chromium(profile: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    profile = tempfile.mkdtemp(prefix="chromium-")
    driver = chromium(profile)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
async def relay(upstream: MockServer) -> AsyncIterator[Relay]:
    upstream.delay = 0.02
    async with Relay(upstream=upstream.base_url, api_key=UPSTREAM_KEY) as relay:
        yield relay


class Page:
    """The page driven from a worker thread, so the relay keeps serving on this loop."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver

    async def run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def open(self, url: str) -> None:
        def go() -> None:
            self.driver.get(url)
            self.driver.execute_script("sessionStorage.clear()")
            self.driver.get(url)

        await self.run(go)

    async def ask(self, text: str) -> None:
        def type_and_send() -> None:
            self.driver.find_element(By.ID, "prompt").send_keys(text)
            self.driver.find_element(By.ID, "send").click()

        await self.run(type_and_send)

    async def current(self) -> str | None:
        script = "const e = document.getElementById('current'); return e ? e.textContent : null"
        result: str | None = await self.run(self.driver.execute_script, script)
        return result

    async def wait(self, script: str, timeout: float = 10.0) -> Any:
        """Wait until ``script`` returns something truthy in the page, and return it."""

        def until() -> Any:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.02).until(
                lambda d: d.execute_script(script)
            )

        return await self.run(until)

    async def answers(self) -> list[str]:
        script = (
            "return [...document.querySelectorAll('.assistant:not(.note):not(#current)')]"
            ".map(e => e.textContent)"
        )
        result: list[str] = await self.run(self.driver.execute_script, script)
        return result


CURRENT_LONGER_THAN = (
    "const e = document.getElementById('current');"
    " return e && e.textContent.length > {n} ? e.textContent : null"
)
FINISHED = "return !document.getElementById('current') && !!document.querySelector('.assistant')"


async def test_answer_grows_word_by_word(
    browser: webdriver.Chrome, relay: Relay, upstream: MockServer
) -> None:
    upstream.enqueue(Reply(text=ANSWER))
    page = Page(browser)
    await page.open(relay.url + "/")
    await page.ask("Count for me")
    samples = [await page.wait(CURRENT_LONGER_THAN.format(n=0))]
    for _ in range(3):
        samples.append(await page.wait(CURRENT_LONGER_THAN.format(n=len(samples[-1]))))
    assert all(ANSWER.startswith(s) for s in samples)
    assert len(set(samples)) == 4 and len(samples[-1]) < len(ANSWER)
    await page.wait(FINISHED)
    assert await page.answers() == [ANSWER]


async def test_stop_button_stops_the_generation(
    browser: webdriver.Chrome, relay: Relay, upstream: MockServer
) -> None:
    upstream.enqueue(Reply(text=ANSWER, fault=Fault.stall_after(6)))
    page = Page(browser)
    await page.open(relay.url + "/")
    await page.ask("Go on and on")
    partial = await page.wait(CURRENT_LONGER_THAN.format(n=3))
    await page.run(browser.find_element(By.ID, "stop").click)
    await page.wait(
        "return [...document.querySelectorAll('.note')].some(e => e.textContent === 'Stopped.')"
    )
    await upstream.wait_disconnect(timeout=3)
    answers = await page.answers()
    assert len(answers) == 1 and answers[0].startswith(partial) and ANSWER.startswith(answers[0])
    assert (
        await page.run(browser.execute_script, "return document.getElementById('send').disabled")
        is False
    )


async def test_reload_mid_answer_resumes_without_duplicates(
    browser: webdriver.Chrome, relay: Relay, upstream: MockServer
) -> None:
    upstream.enqueue(Reply(text=ANSWER))
    page = Page(browser)
    await page.open(relay.url + "/")
    await page.ask("Tell me everything")
    before = await page.wait(CURRENT_LONGER_THAN.format(n=10))
    assert "#strm_" in await page.run(lambda: browser.current_url)
    await page.run(browser.refresh)
    after_reload = await page.wait(CURRENT_LONGER_THAN.format(n=0))
    assert after_reload.startswith(before)  # shown at once from where it was
    await page.wait(FINISHED)
    assert await page.answers() == [ANSWER]


async def test_errors_are_shown(
    browser: webdriver.Chrome, relay: Relay, upstream: MockServer
) -> None:
    upstream.enqueue(Fault.status(400, "That model cannot do this.", code="bad_model"))
    page = Page(browser)
    await page.open(relay.url + "/")
    await page.ask("Anything")
    shown = await page.wait("return document.getElementById('error').textContent")
    assert "That model cannot do this." in shown


async def test_page_works_with_a_relay_token(
    browser: webdriver.Chrome, upstream: MockServer
) -> None:
    upstream.enqueue(Reply(text=ANSWER))
    token = "page-token-0123456789"
    async with Relay(upstream=upstream.base_url, api_key=UPSTREAM_KEY, token=token) as relay:
        page = Page(browser)
        await page.open(relay.url + "/")
        script = f"sessionStorage.setItem('openai-sse-relay:token', '{token}')"
        await page.run(browser.execute_script, script)
        await page.ask("With a token")
        await page.wait(FINISHED)
        assert await page.answers() == [ANSWER]
