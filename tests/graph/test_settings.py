"""Settings that contradict each other are one settings error naming both variables and
the fix, before anything starts; the defaults adapt instead of contradicting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agents.llm.prices import FREE, PriceTable
from graph.settings import Settings, SettingsError, get_settings
from tests.processes import Service, console_script, service_env, stub_model


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_worker_concurrency_defaults_to_the_global_limit_when_that_is_lower() -> None:
    assert settings(max_concurrent_generations=1).worker_config().worker_concurrency == 1
    assert settings(max_concurrent_generations=2).effective_worker_concurrency == 2
    assert settings(max_concurrent_generations=10).effective_worker_concurrency == 3
    assert settings(max_concurrent_generations=10, worker_concurrency=8).worker_config()\
        .worker_concurrency == 8  # fmt: skip


def test_heartbeat_defaults_to_a_third_of_the_takeover_threshold_when_that_is_short() -> None:
    assert settings(worker_dead_after_seconds=3).worker_config().heartbeat == 1
    assert settings().worker_config().heartbeat == 2


@pytest.mark.parametrize(
    ("values", "names"),
    [
        (
            {"max_concurrent_generations": 1, "worker_concurrency": 3},
            ("WORKER_CONCURRENCY=3", "MAX_CONCURRENT_GENERATIONS=1"),
        ),
        (
            {"worker_dead_after_seconds": 5, "heartbeat_seconds": 2},
            ("HEARTBEAT_SECONDS=2", "WORKER_DEAD_AFTER_SECONDS=5"),
        ),
        (
            {"worker_dead_after_seconds": 5, "queue_poll_seconds": 5},
            ("QUEUE_POLL_SECONDS=5", "WORKER_DEAD_AFTER_SECONDS=5"),
        ),
        (
            {"llm_timeout_seconds": 900, "generation_timeout_seconds": 600},
            ("LLM_TIMEOUT_SECONDS=900", "GENERATION_TIMEOUT_SECONDS=600"),
        ),
        (
            {"generation_timeout_seconds": 100},  # below the bundled model's default call
            ("LLM_TIMEOUT_SECONDS=120", "GENERATION_TIMEOUT_SECONDS=100"),
        ),
        (
            {"llm_max_tokens": 4096, "local_model_context": 4096},
            ("LLM_MAX_TOKENS=4096", "LOCAL_MODEL_CONTEXT=4096"),
        ),
        ({"rate_limit_mutations": "sixty a minute"}, ("RATE_LIMIT_MUTATIONS",)),
        (
            {"llm_price_input_per_mtok": 0.15},
            ("LLM_PRICE_INPUT_PER_MTOK", "LLM_PRICE_OUTPUT_PER_MTOK"),
        ),
    ],
)
def test_each_contradiction_is_a_settings_error_naming_both(
    values: dict[str, object], names: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError) as caught:
        settings(**values)
    message = str(caught.value)
    for name in names:
        assert name in message
    assert "Traceback" not in message


def test_the_price_table_is_free_locally_given_for_openai_and_unknown_without_prices() -> None:
    prices = {"llm_price_input_per_mtok": 0.15, "llm_price_output_per_mtok": 0.6}
    assert settings().worker_config().prices == FREE  # the bundled model
    assert settings(**prices).price_table() == FREE  # a table for another provider
    priced = settings(llm_provider="openai", **prices).worker_config().prices
    assert priced == PriceTable(0.15, 0.6) and priced.cost(1_000_000, 1_000) == 0.1506
    assert settings(llm_provider="openai").worker_config().prices is None
    with pytest.raises(ValueError, match="llm_price_output_per_mtok"):
        settings(llm_provider="openai", llm_price_input_per_mtok=0.1, llm_price_output_per_mtok=-1)


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"LLM_TEMPERATURE": "7"}, "LLM_TEMPERATURE: Input should be less than or equal to 2"),
        (
            {"MAX_CONCURRENT_GENERATIONS": "1", "WORKER_CONCURRENCY": "3"},
            "WORKER_CONCURRENCY=3 is more than MAX_CONCURRENT_GENERATIONS=1",
        ),
    ],
)
def test_get_settings_names_the_variables_as_the_environment_spells_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, environment: dict[str, str], expected: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError) as caught:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert str(caught.value).startswith(expected)


def test_serve_runs_tasks_with_one_generation_at_a_time(tmp_path: Path) -> None:
    """`MAX_CONCURRENT_GENERATIONS=1` alone, what a laptop wants, used to stop
    `postassist serve` with DBOS's "concurrency must be greater than or equal to
    worker_concurrency"."""
    with stub_model(tmp_path, latency=0.05) as model_url:
        env = service_env(
            f"sqlite+aiosqlite:///{tmp_path}/one.db", model_url, MAX_CONCURRENT_GENERATIONS="1"
        )
        env.pop("WORKER_CONCURRENCY", None)
        service = Service(env, tmp_path / "serve.log")
        try:
            ids = [service.generate(paperTitle=f"Paper {n} on attention") for n in range(2)]
            finished = [service.wait_for(i, "COMPLETED", "FAILED") for i in ids]
        finally:
            service.proc.stop()
    assert [t["status"] for t in finished] == ["COMPLETED", "COMPLETED"]


def test_serve_with_contradictory_settings_says_which_and_exits(tmp_path: Path) -> None:
    env = {**os.environ, "MAX_CONCURRENT_GENERATIONS": "1", "WORKER_CONCURRENCY": "3"}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/never.db"
    done = subprocess.run(
        [console_script(), "serve"], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "WORKER_CONCURRENCY=3 is more than MAX_CONCURRENT_GENERATIONS=1" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "never.db").exists()  # nothing started
