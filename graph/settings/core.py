"""`Settings`: every setting of the service in one object, from the groups by concern
(`runtime`, `request_limits`, `server`, `integrations`, `operations`), with the checks
across them; `get_settings` reads it once per process and turns a validation error into
a `SettingsError`."""

from __future__ import annotations

from functools import lru_cache

from pydantic import ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from graph.settings.conflicts import SETTING_CONFLICTS
from graph.settings.integrations import IntegrationSettings
from graph.settings.operations import OperationsSettings
from graph.settings.request_limits import RequestLimitSettings
from graph.settings.runtime import RuntimeSettings
from graph.settings.server import ServerSettings


# The groups are listed last first: pydantic orders fields from the last base to the
# first, so the fields (and a settings error's lines) keep the order runtime, request
# limits, server, integrations, operations.
class Settings(
    BaseSettings,
    OperationsSettings,
    IntegrationSettings,
    ServerSettings,
    RequestLimitSettings,
    RuntimeSettings,
):
    """Every setting of the service, read from environment variables of the same name
    in upper case (`DATABASE_URL`, `LLM_PROVIDER`, ...). The README lists them."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """Settings that contradict each other are refused here, naming both variables
        and the fix, before anything starts (`SETTING_CONFLICTS`)."""
        problems = [problem for check in SETTING_CONFLICTS if (problem := check(self))]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _jwt_complete(self) -> Settings:
        """JWT_ISSUER and a key come together: one without the other is a mistake that
        would otherwise silently refuse every JWT."""
        keys = (self.jwt_secret, self.jwt_public_key_file, self.jwt_jwks_file)
        if bool(self.jwt_issuer) != any(keys):
            raise ValueError(
                "JWTs need JWT_ISSUER and one of JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWT_JWKS_FILE"
            )
        return self


class SettingsError(ValueError):
    """The environment's settings are not valid; the message lists each problem with
    the variable it names, one per line."""


def get_settings() -> Settings:
    """Return the process-wide `Settings` (read once). Raises `SettingsError` naming
    every setting that is wrong, and the fix."""
    try:
        return _read_settings()
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None


@lru_cache
def _read_settings() -> Settings:
    return Settings()


get_settings.cache_clear = _read_settings.cache_clear  # type: ignore[attr-defined]


def describe(error: ValidationError) -> str:
    """One line per problem of `error`: `VARIABLE: message` (the variable in upper case,
    as the environment spells it; a check across settings names its own)."""
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]).upper()
        message = str(problem["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "\n".join(lines)
