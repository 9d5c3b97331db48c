"""The dashboard in a real headless Chromium, against a real `postassist serve` with a
worker on the stub model, one browser session for the module (tests run in order):
a generation started from the form shows every agent reaching done, the post and both
reports, and a WebSocket dropped in the middle of it comes back with every stored event
shown exactly once; the API's validation errors appear next to their fields; a review
is approved with an edit; a batch of three shows three rows that finish; axe-core finds
no serious or critical violation; with a key created, the page asks for it, keeps it in
sessionStorage and works with it. Screenshots go to the module's temporary directory
(`POSTASSIST_DOCS_SCREENSHOT=1` also writes docs/dashboard.png); the figures (time
from the mutation to the painted agent rows, page weight) are printed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from db import keys
from db.engine import create_engine, create_session_factory
from tests.processes import INPUT, Service

AXE = Path(__file__).parents[2] / "js" / "node_modules" / "axe-core" / "axe.min.js"
DOCS_PNG = Path(__file__).parents[3] / "docs" / "dashboard.png"
VERIFIERS = {"tech_verifier", "style_checker"}
READY = "return document.body.dataset.ready === 'true'"
MEASURE = "generate-to-agents"
FIRST_DRAFT = "return performance.getEntriesByName('writer-to-first-draft')[0]?.duration ?? null"
SCHEMA = Path(__file__).parents[3] / "schema.graphql"
TASK_QUERY = """query($id: ID!) { task(id: $id) { status result { content }
  verificationReports { agent } } }"""


def wait(driver: Any, condition: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` and a dump."""
    try:
        stale = [StaleElementReferenceException]
        waiting = WebDriverWait(driver, timeout, poll_frequency=0.05, ignored_exceptions=stale)
        return waiting.until(lambda _d: condition())
    except Exception as exc:  # TimeoutException: add what the page shows
        main = driver.find_element(By.TAG_NAME, "body").text[:1500]
        raise AssertionError(f"timed out waiting for {what}: {exc!r}\n{main}") from None


def js(driver: Any, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def open_dashboard(driver: Any, service: Service) -> None:
    driver.get(f"http://127.0.0.1:{service.port}/")
    wait(driver, lambda: js(driver, READY), what="ready")


def type_into(driver: Any, element_id: str, text: str) -> None:
    element = driver.find_element(By.ID, element_id)
    element.clear()
    element.send_keys(text)


def fill_form(driver: Any, **fields: str) -> None:
    values = {"f-paperTitle": INPUT["paperTitle"]}
    values["f-additionalContext"] = INPUT["additionalContext"]
    values |= {f"f-{name}": value for name, value in fields.items()}
    for element_id, value in values.items():
        element = driver.find_element(By.ID, element_id)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            type_into(driver, element_id, value)


def agent_statuses(driver: Any) -> dict[str, str]:
    return js(
        driver,
        "return Object.fromEntries([...document.querySelectorAll('#t-tree li[data-agent]')]"
        ".map(li => [li.dataset.agent, li.dataset.status]))",
    )


def page_status(driver: Any) -> str | None:
    return js(driver, "return document.querySelector('#t-head .status')?.dataset.status")


def connection_state(driver: Any) -> str:
    return js(driver, "return document.querySelector('#connection').dataset.state")


def task_id(driver: Any) -> str:
    return js(driver, "return location.hash").removeprefix("#/task/")


def assert_clean(driver: Any) -> None:
    """No CSP violation, and no error in the console (a refused key's 401 aside)."""
    assert js(driver, "return window.__postassist.violations") == []
    errors = [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "401" not in entry["message"]
    ]
    assert errors == []


def test_a_generation_runs_live_and_survives_a_dropped_websocket(
    browser: Any, service: Service, artifacts: Path
) -> None:
    open_dashboard(browser, service)
    wait(browser, lambda: connection_state(browser) == "live", what="the WebSocket")
    fill_form(browser, maxHashtags="5")
    browser.find_element(By.ID, "start").click()
    wait(browser, lambda: len(agent_statuses(browser)) == 4, what="the agent rows")
    painted = wait(
        browser,
        lambda: js(browser, f"return performance.getEntriesByName('{MEASURE}')[0]?.duration"),
        what="the generate-to-agents measure",
    )
    rendered = js(browser, "return performance.getEntriesByName('answer-to-agents')[0].duration")
    tid = task_id(browser)
    wait(browser, lambda: agent_statuses(browser)["linkedin_creator"] == "WORKING", what="writer")
    browser.save_screenshot(str(artifacts / "during-run.png"))
    shown_before = len(js(browser, "return window.__postassist.seqs()"))
    assert js(browser, "return window.__postassist.dropConnection(1200)") is True
    time.sleep(0.4)
    assert service.task(tid)["status"] == "RUNNING"  # the drop is mid-run
    assert connection_state(browser) == "reconnecting"
    browser.save_screenshot(str(artifacts / "reconnecting.png"))

    def verifying_or_done() -> bool:
        working = {name for name, status in agent_statuses(browser).items() if status == "WORKING"}
        done = page_status(browser) == "COMPLETED"
        return connection_state(browser) == "live" and (done or bool(working & VERIFIERS))

    wait(browser, verifying_or_done, timeout=60, what="live again, verifying")
    if page_status(browser) != "COMPLETED":
        browser.save_screenshot(str(artifacts / "verifying.png"))
        if os.environ.get("POSTASSIST_DOCS_SCREENSHOT") == "1":  # the README's picture
            browser.save_screenshot(str(DOCS_PNG))

    wait(browser, lambda: page_status(browser) == "COMPLETED", timeout=60, what="COMPLETED")
    wait(browser, lambda: set(agent_statuses(browser).values()) == {"COMPLETED"}, what="agents")
    stored = [event["seq"] for event in service.events(tid)]
    wait(browser, lambda: js(browser, "return window.__postassist.seqs()") == stored, what="seqs")
    assert shown_before < len(stored)
    stats = js(browser, "return window.__postassist.stats")
    assert stats["duplicates"] == 0 and stats["gaps"] == 0, stats
    assert js(browser, "return window.__postassist.connections()") >= 2  # it reconnected
    if "includeDrafts" in SCHEMA.read_text(encoding="utf-8"):
        assert stats["includeDrafts"] and stats["drafts"] > 0, stats  # the post as written
    first_draft = js(browser, FIRST_DRAFT)  # ms, or None without drafts
    task = service.gql(TASK_QUERY, id=tid)["task"]
    post = lambda: browser.find_element(By.ID, "t-text")  # noqa: E731
    wait(browser, lambda: post().get_attribute("data-draft") == "false", what="the final post")
    assert post().text.strip() == task["result"]["content"].strip()
    reports = browser.find_elements(By.CSS_SELECTOR, "#t-report-list article.report")
    assert sorted(r.get_attribute("data-agent") for r in reports) == sorted(
        report["agent"] for report in task["verificationReports"]
    )
    assert len(reports) == 2
    marked = browser.find_elements(By.CSS_SELECTOR, "#t-text mark")  # a quoted issue, in place
    assert marked and all(m.text in task["result"]["content"] for m in marked)
    browser.save_screenshot(str(artifacts / "completed.png"))
    assert_clean(browser)
    weight = page_weight(service)
    print(f"\ndashboard: generatePost sent -> agent rows painted {painted:.1f} ms (of which "
          f"the answer -> painted {rendered:.1f} ms); page weight "
          f"{weight / 1024:.1f} KB; {len(stored)} events, reconnected with afterSeq; "
          f"includeDrafts {stats['includeDrafts']}, {stats['drafts']} draft deltas, the first "
          f"{first_draft} ms after the writer's AGENT_STARTED")  # fmt: skip
    (artifacts / "figures.json").write_text(
        json.dumps(
            {
                "generate_to_agents_ms": painted,
                "answer_to_agents_ms": rendered,
                "page_bytes": weight,
            }
        ),
        encoding="utf-8",
    )


def page_weight(service: Service) -> int:
    """Bytes of `/` and of every file it names (the ES modules through modulepreload)."""
    base = f"http://127.0.0.1:{service.port}"
    page = httpx.get(base + "/")
    urls = set(re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', page.text))
    return len(page.content) + sum(len(httpx.get(base + url).content) for url in urls)


def test_the_apis_validation_errors_show_next_to_their_fields(
    browser: Any, service: Service
) -> None:
    open_dashboard(browser, service)
    fill_form(browser, paperTitle="abc", maxHashtags="50")
    browser.find_element(By.ID, "start").click()
    title_error = browser.find_element(By.ID, "f-paperTitle-error")
    wait(browser, lambda: title_error.text, what="the title's error")
    assert "paperTitle" in title_error.text and "5" in title_error.text
    assert "maxHashtags" in browser.find_element(By.ID, "f-maxHashtags-error").text
    title = browser.find_element(By.ID, "f-paperTitle")
    assert title.get_attribute("aria-invalid") == "true"
    assert browser.switch_to.active_element == title  # focus moves to the first bad field
    assert js(browser, "return location.hash") == ""  # nothing started
    assert_clean(browser)


def test_a_review_is_approved_with_an_edit(browser: Any, service: Service, artifacts: Path) -> None:
    open_dashboard(browser, service)
    fill_form(browser, review="ALWAYS", maxHashtags="3")
    browser.find_element(By.ID, "start").click()
    wait(browser, lambda: page_status(browser) == "AWAITING_REVIEW", timeout=60, what="review")
    tid = task_id(browser)
    editor = wait(browser, lambda: browser.find_element(By.ID, "review-content"), what="editor")
    edited = editor.get_attribute("value").replace(
        "What would you try it on?", "Would you train a smaller model on more tokens?"
    )
    assert "smaller model" in edited
    editor.clear()
    editor.send_keys(edited)
    browser.save_screenshot(str(artifacts / "review.png"))
    browser.find_element(By.XPATH, "//button[text()='Approve']").click()
    wait(browser, lambda: page_status(browser) == "COMPLETED", what="COMPLETED after approval")
    assert service.gql(TASK_QUERY, id=tid)["task"]["result"]["content"] == edited
    decisions = [e for e in service.events(tid) if e["kind"] == "REVIEW_DECISION"]
    assert len(decisions) == 1 and decisions[0]["data"]["edited"] is True, decisions
    assert browser.find_element(By.ID, "t-review").get_attribute("hidden") is not None
    assert_clean(browser)


def test_a_batch_of_three_shows_three_rows_that_finish(
    browser: Any, service: Service, artifacts: Path
) -> None:
    open_dashboard(browser, service)
    for tone in ("PROFESSIONAL", "CASUAL", "ACADEMIC"):
        fill_form(browser, tone=tone)
        browser.find_element(By.ID, "batch-add").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#batch-list li")) == 3
    browser.find_element(By.ID, "batch-start").click()

    def statuses() -> list[str]:
        rows = "return [...document.querySelectorAll('#task-rows tr')].map(r => r.dataset.status)"
        return js(browser, rows)

    wait(browser, lambda: len(statuses()) == 3, what="three rows")
    batch_id = js(browser, "return location.hash").removeprefix("#/batch/")
    assert browser.find_element(By.ID, "filter-batch").get_attribute("value") == batch_id
    wait(browser, lambda: statuses() == ["COMPLETED"] * 3, timeout=90, what="three COMPLETED")
    browser.save_screenshot(str(artifacts / "batch.png"))
    assert_clean(browser)


def test_axe_finds_no_serious_violation(browser: Any, service: Service) -> None:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `make js`")
    open_dashboard(browser, service)
    first = browser.find_element(By.CSS_SELECTOR, "#task-rows a")
    first.click()  # a finished task: tree, post with marks, reports, usage, events
    wait(browser, lambda: page_status(browser) == "COMPLETED", what="a task page")
    js(browser, AXE.read_text(encoding="utf-8"))
    found = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))))"
        ".catch(e => done([{id: 'axe failed', impact: 'critical', nodes: [String(e)]}]))"
    )
    serious = [v for v in found if v["impact"] in ("serious", "critical")]
    assert serious == [], serious


async def create_admin_key(database_url: str) -> str:
    """A new admin API key in the service's database (as `postassist keys create
    --admin` stores it); returns its token."""
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            _key, token = await keys.create_key(session=session, name="dashboard", admin=True)
            return token
    finally:
        await engine.dispose()


def test_with_a_key_the_page_asks_for_it_and_keeps_it_in_the_tab(
    browser: Any, service: Service
) -> None:
    service.generate()  # a local task, which an admin key sees
    token = asyncio.run(create_admin_key(service.env["DATABASE_URL"]))  # type: ignore[attr-defined]
    time.sleep(1)  # AUTH_CACHE_SECONDS=0.5: the server now requires a key
    browser.get(f"http://127.0.0.1:{service.port}/")
    dialog = browser.find_element(By.ID, "key-dialog")
    wait(browser, lambda: dialog.get_attribute("open") is not None, what="the key dialog")
    type_into(browser, "key-input", "pa_wrong_key")
    browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
    refusal = browser.find_element(By.ID, "key-error")
    wait(browser, lambda: "Refused" in refusal.text, what="the refusal")
    type_into(browser, "key-input", token)
    browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
    wait(browser, lambda: js(browser, READY), what="ready")
    assert js(browser, "return sessionStorage.getItem('postassist.apiKey')") == token
    assert js(browser, "return localStorage.length") == 0
    assert browser.find_elements(By.CSS_SELECTOR, "#task-rows tr")  # an admin sees them all
    wait(browser, lambda: connection_state(browser) == "live", what="a WebSocket with the key")
    fill_form(browser, maxHashtags="3")
    browser.find_element(By.ID, "start").click()
    wait(browser, lambda: page_status(browser) == "COMPLETED", timeout=60, what="a keyed run")
