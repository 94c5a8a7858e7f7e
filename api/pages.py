"""Server-rendered pages (web pages issue)."""

from typing import Any

ROUTES: list[Any] = []
