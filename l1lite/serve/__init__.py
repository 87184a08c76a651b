"""Serving: an OpenAI-compatible server with a thinking budget per request (``l1lite serve``).

- ``app``: the HTTP side (FastAPI): requests, the admission queue, OpenAI-style responses and stream chunks.
- ``cli``: ``l1lite serve``: its settings (``ServeConfig``) and uvicorn.

Imports the core and inference.
"""
