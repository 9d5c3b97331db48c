"""Settings: the only module that reads the environment (and an optional `.env` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.llm import LOCAL_MODEL_ALIAS, ModelConfig


class Settings(BaseSettings):
    """Every setting of the service, read from environment variables of the same name
    in upper case (`DATABASE_URL`, `LLM_PROVIDER`, ...). The README lists them."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite+aiosqlite:///./postassist.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///file.db or "
        "postgresql+asyncpg://user@host/db",
    )
    broadcast_url: str = Field(
        "memory://", description="broadcaster URL: memory://, redis://host:6379, postgres://..."
    )
    llm_provider: Literal["local", "openai"] = Field(
        "local", description="local: bundled SmolLM2 via llama.cpp; openai: any OpenAI-compatible"
    )
    openai_api_key: str | None = Field(None, description="key for LLM_PROVIDER=openai")
    openai_base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint root ending in /v1 (vLLM, Ollama, ...)"
    )
    llm_model: str | None = Field(
        None, description="model name; default gpt-4o-mini (openai) or the bundled SmolLM2"
    )
    llm_temperature: float = Field(0.3, ge=0.0, le=2.0)
    llm_max_tokens: int = Field(512, ge=16, le=32768, description="output-token cap per call")
    llm_timeout_seconds: float = Field(120.0, gt=0, description="per LLM request")
    llm_max_retries: int = Field(2, ge=0, le=10)
    local_model_path: str | None = Field(
        None, description="a GGUF to serve instead of the bundled SmolLM2-135M-Instruct"
    )
    local_model_context: int = Field(4096, ge=512, description="llama.cpp n_ctx, tokens")
    local_model_startup_seconds: float = Field(120.0, gt=0)
    max_concurrent_generations: int = Field(3, ge=1, le=64)
    max_revisions: int = Field(2, ge=0, le=5, description="verification round-trips per post")
    generation_timeout_seconds: float = Field(900.0, gt=0, description="per task")
    follow_poll_seconds: float = Field(
        5.0, gt=0, description="subscription re-read interval if a bus notice is lost"
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: str = "info"

    @property
    def resolved_model(self) -> str:
        """The model name to send: `llm_model`, or the provider's default."""
        if self.llm_model:
            return self.llm_model
        return "gpt-4o-mini" if self.llm_provider == "openai" else LOCAL_MODEL_ALIAS

    def llm_config(self) -> ModelConfig:
        """How to reach the configured chat model."""
        return ModelConfig(
            provider=self.llm_provider,
            model=self.resolved_model,
            base_url=self.openai_base_url,
            api_key=self.openai_api_key,
            temperature=self.llm_temperature,
            max_tokens=self.llm_max_tokens,
            timeout=self.llm_timeout_seconds,
            max_retries=self.llm_max_retries,
            local_model_path=Path(self.local_model_path) if self.local_model_path else None,
            local_context=self.local_model_context,
            local_startup_seconds=self.local_model_startup_seconds,
        )


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide `Settings` (read once)."""
    return Settings()
