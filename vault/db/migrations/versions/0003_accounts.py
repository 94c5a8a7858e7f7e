"""accounts: eligibility facts, opt-out, closure columns; auth throttle; opt-out forms

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = ("accounts",)
depends_on = None

_NEW_ACCOUNT_COLUMNS = (
    ("overseas", sa.Boolean(), sa.false()),
    ("unaccompanied_minor", sa.Boolean(), sa.false()),
    ("unable_to_use_space", sa.Boolean(), sa.false()),
    ("eligibility_table", sa.String(length=64), None),
    ("opt_out_requested_at", sa.DateTime(timezone=True), None),
    ("opt_out_form_at", sa.DateTime(timezone=True), None),
    ("opted_out_at", sa.DateTime(timezone=True), None),
    ("closed_reason", sa.String(length=32), None),
    ("contacts_updated_at", sa.DateTime(timezone=True), None),
)


def upgrade() -> None:
    # Batch mode: SQLite cannot ALTER most things in place (render_as_batch in env.py).
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        for name, type_, default in _NEW_ACCOUNT_COLUMNS:
            batch_op.add_column(
                sa.Column(
                    name,
                    type_,
                    nullable=default is None,
                    server_default=default,
                )
            )
    op.create_table(
        "auth_throttle",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_count", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("auth_throttle", schema=None) as batch_op:
        batch_op.create_index("ix_auth_throttle_updated_at", ["updated_at"], unique=False)
    op.create_table(
        "opt_out_forms",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("blob_name", sa.String(length=200), nullable=False),
        sa.Column("wrapped_data_key", sa.LargeBinary(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("blob_name"),
    )
    with op.batch_alter_table("opt_out_forms", schema=None) as batch_op:
        batch_op.create_index("ix_opt_out_forms_account_id", ["account_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("opt_out_forms", schema=None) as batch_op:
        batch_op.drop_index("ix_opt_out_forms_account_id")
    op.drop_table("opt_out_forms")
    with op.batch_alter_table("auth_throttle", schema=None) as batch_op:
        batch_op.drop_index("ix_auth_throttle_updated_at")
    op.drop_table("auth_throttle")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        for name, _type, _default in reversed(_NEW_ACCOUNT_COLUMNS):
            batch_op.drop_column(name)
