"""The real S3 server for tests: settings from the environment, and the CI rule.

Start the server and export its settings with::

    eval "$(scripts/s3-server.sh start)"

which sets VAULT_S3_ENDPOINT, VAULT_S3_ACCESS_KEY, VAULT_S3_SECRET_KEY,
VAULT_S3_BUCKET, VAULT_S3_REGION and VAULT_S3_SECURE. Without them, S3 tests skip
on a workstation and FAIL in CI (``CI=true``): a CI run that silently skipped the
production storage path would prove nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tests.support.services import unavailable
from vault.storage.s3 import S3Settings

ENV_VARS = ("VAULT_S3_ENDPOINT", "VAULT_S3_ACCESS_KEY", "VAULT_S3_SECRET_KEY", "VAULT_S3_BUCKET")
HOW_TO_START = 'start it with: eval "$(scripts/s3-server.sh start)"'


def s3_settings_from_env(
    environ: Mapping[str, str] | None = None, **overrides: object
) -> S3Settings | None:
    """S3 settings from VAULT_S3_* variables, or None when they are not set."""
    env = os.environ if environ is None else environ
    if not all(env.get(name) for name in ENV_VARS):
        return None
    settings = S3Settings.from_env(env)
    if overrides:
        fields = {name: getattr(settings, name) for name in settings.__dataclass_fields__}
        fields.update(overrides)
        settings = S3Settings(**fields)  # type: ignore[arg-type]
    return settings


def require_s3_settings(**overrides: object) -> S3Settings:
    """Settings of the test S3 server; skip (workstation) or fail (CI) without them."""
    settings = s3_settings_from_env(**overrides)
    if settings is not None:
        return settings
    missing = ", ".join(name for name in ENV_VARS if not os.environ.get(name))
    unavailable(f"no S3 test server ({missing} unset); {HOW_TO_START}")
