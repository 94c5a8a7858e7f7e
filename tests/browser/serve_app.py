"""Serve the app with the vault opened BEFORE the event loop starts.

Used by the browser tests only when ``VAULT_BROWSER_SERVER=factory``: same app
factory, same uvicorn, same settings as ``ofpra-vault serve``, but the vault is
opened outside the ASGI lifespan (an extension whose install() runs its own event
loop cannot run inside uvicorn's). The default remains the real ``serve`` command.
"""

from __future__ import annotations

import uvicorn

from api.app import create_app
from vault.config import load_settings
from vault.service import open_vault

if __name__ == "__main__":
    settings = load_settings()
    vault = open_vault(settings)
    try:
        uvicorn.run(
            create_app(vault=vault), host=settings.host, port=settings.port, log_level="warning"
        )
    finally:
        vault.close()
