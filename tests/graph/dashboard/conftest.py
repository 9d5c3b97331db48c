"""A `postassist serve` (API and worker, SQLite) on the stub model, and one headless
Chromium session driven by Selenium for every browser check of the dashboard, with
every host name but 127.0.0.1 made unresolvable (nothing outside the server loads)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import service_missing
from tests.processes import Service, service_env, stub_model

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Seconds the stub model takes per call: a run lasts a few seconds, long enough to
#: drop the WebSocket in the middle of it.
STUB_LATENCY = 0.25


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dashboard")


@pytest.fixture(scope="module")
def artifacts(workdir: Path) -> Path:
    """Where the screenshots go (kept by pytest with its other temporary directories)."""
    path = workdir / "screenshots"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def service(workdir: Path) -> Iterator[Service]:
    """The API with a worker on the stub model, in local mode (no key yet)."""
    with stub_model(workdir, latency=STUB_LATENCY) as model_url:
        env = service_env(
            f"sqlite+aiosqlite:///{workdir}/dashboard.db", model_url, AUTH_CACHE_SECONDS="0.5"
        )
        service = Service(env, workdir / "service.log")
        service.env = env  # type: ignore[attr-defined]  # the keys test runs the CLI with it
        try:
            yield service
        finally:
            service.proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium (Debian's, through chromium-driver) for the module."""
    if not (os.access(CHROMIUM, os.X_OK) and shutil.which(CHROMEDRIVER)):
        service_missing("Debian's chromium and chromium-driver are not installed (make browser)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1440,1100",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=DriverService(CHROMEDRIVER))
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
