"""How counts read in event messages and the CLI (no imports: the CLI starts fast)."""

from __future__ import annotations


def counted(count: int, noun: str, plural_noun: str | None = None) -> str:
    """`count` and `noun`, pluralised: "1 insight", "0 insights", "2 LLM calls"
    (`plural_noun` for nouns that do not take an "s")."""
    return f"{count} {noun if count == 1 else plural_noun or noun + 's'}"
