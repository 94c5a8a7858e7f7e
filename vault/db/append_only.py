"""Database-enforced append-only tables (DESIGN.md §6).

Triggers reject UPDATE and DELETE (and TRUNCATE on PostgreSQL) on ledger tables, so
that even code with write access to the database cannot rewrite history through
ordinary statements. A superuser can still drop a trigger: that is what
``ofpra-vault ledger verify`` and the external monitor/witnesses are for.
"""

from __future__ import annotations

from alembic import op

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION vault_reject_rewrite() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'append-only table %: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


def protect(table: str) -> None:
    """Install the append-only triggers on ``table`` for the current dialect."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'append-only table {table}: {verb} refused'); END"
            )
    elif dialect == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(
            f"CREATE TRIGGER {table}_no_rewrite BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION vault_reject_rewrite()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION vault_reject_rewrite()"
        )
    else:  # pragma: no cover - only the two supported dialects exist
        raise RuntimeError(f"append-only triggers not implemented for {dialect}")


def unprotect(table: str) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_rewrite ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
