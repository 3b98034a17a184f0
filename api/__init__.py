"""The HTTP API: FastAPI app, routers per resource, wire schemas."""
