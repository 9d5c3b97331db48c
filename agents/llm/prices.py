"""What a model call costs: `PriceTable`, USD per million input and output tokens.

The table comes from the settings (`LLM_PRICE_INPUT_PER_MTOK`, `LLM_PRICE_OUTPUT_PER_MTOK`;
the bundled `local` model is `FREE`) and reaches the run through the worker's `Executor`
and `agents.teams.nodes.RunContext`, which prices each call as it reports its LLM_USAGE
event (`cost_usd` in the event's data). A run without a table reports `cost_usd: null`:
the cost of that call is unknown, not zero.

Imports nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Tokens a price is quoted for (providers quote USD per million tokens).
TOKENS_PER_PRICE = 1_000_000
#: Decimal places a call's cost is rounded to (1e-12 USD: far below any real price, and
#: sums of rounded costs stay exact enough to compare in tests and dashboards).
COST_DECIMALS = 12


@dataclass(frozen=True)
class PriceTable:
    """USD per million input (prompt) tokens and per million output (completion) tokens,
    each >= 0 (the settings check that; `ValueError` here for a negative price)."""

    input_per_mtok: float
    output_per_mtok: float

    def __post_init__(self) -> None:
        if self.input_per_mtok < 0 or self.output_per_mtok < 0:
            raise ValueError("a price per million tokens is >= 0")

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for one call that read `input_tokens` and wrote `output_tokens`."""
        usd = (
            input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok
        ) / TOKENS_PER_PRICE
        return round(usd, COST_DECIMALS)


#: The price of the bundled model: it runs on this machine and costs nothing per token.
FREE = PriceTable(input_per_mtok=0.0, output_per_mtok=0.0)
