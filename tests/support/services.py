"""Where the suite's real services are, and the rule that CI never skips them."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql

IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(msg: str) -> NoReturn:
    """A required service or tool is missing: skip on a workstation, fail under
    CI=true (scripts/test.sh installs and starts everything; a skip there would hide
    the tests that matter most)."""
    if IN_CI:
        pytest.fail(msg + " -- under CI=true this test must run, not skip", pytrace=False)
    pytest.skip(msg)


def require(env_var: str, what: str) -> str:
    value = os.environ.get(env_var)
    if value:
        return value
    unavailable(
        f"{what} is not available ({env_var} is not set): run the suite with scripts/test.sh"
    )


def pg_admin_url() -> str:
    return require("VAULT_TEST_PG_URL", "PostgreSQL")


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@contextmanager
def fresh_pg_database(template: str | None = None) -> Iterator[str]:
    """Create an empty (or templated) database; drop it afterwards. Yields its URL."""
    admin = pg_admin_url()
    name = "vault_t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
        if template:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = admin.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def s3_settings() -> dict[str, str]:
    endpoint = require("VAULT_S3_ENDPOINT", "the S3 server")
    return {
        "s3_endpoint": endpoint,
        "s3_access_key": os.environ["VAULT_S3_ACCESS_KEY"],
        "s3_secret_key": os.environ["VAULT_S3_SECRET_KEY"],
        "s3_region": os.environ.get("VAULT_S3_REGION", "us-east-1"),
        "s3_secure": os.environ.get("VAULT_S3_SECURE", "false"),
    }


def require_tool(name: str) -> str:
    """The path of command-line tool ``name``; skipped locally if missing, a failure
    under CI=true (where scripts/test.sh installs it)."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed")
    return path
