"""The HTTP server: the app, its one request pipeline (ASGI), OpenAPI, logs and the process
model (uvicorn, or gunicorn with uvicorn workers)."""
