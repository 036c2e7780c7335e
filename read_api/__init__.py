"""The HTTP API: thin FastAPI routers over command handlers and read-model queries."""
