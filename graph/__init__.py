"""The GraphQL API of PostAssist: Strawberry schema on FastAPI, settings, lifespan, CLI."""
