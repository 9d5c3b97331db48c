"""Settings: the only package that reads the environment (and an optional `.env` file).

`Settings` (`core`) joins the groups by concern: `runtime` (database, bus, model,
workers, sources, timeouts), `request_limits` (what one request may ask) and `server`
(probes, authentication, origins, rate limits, connection caps, how it listens);
`conflicts` holds the checks across groups. `get_settings` reads them once.

May import `agents` (the configs it builds for them) and third-party packages; no other
module of `graph`.
"""

from graph.settings.core import Settings, SettingsError, describe, get_settings

__all__ = ["Settings", "SettingsError", "describe", "get_settings"]
