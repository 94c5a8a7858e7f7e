"""pages: staff page sessions

Revision ID: 0005
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0001'
branch_labels = ('pages',)
depends_on = None


def upgrade() -> None:
    op.create_table('pages_staff_sessions',
    sa.Column('token_digest', sa.LargeBinary(length=32), nullable=False),
    sa.Column('staff_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ),
    sa.PrimaryKeyConstraint('token_digest')
    )
    op.create_index(op.f('ix_pages_staff_sessions_staff_id'), 'pages_staff_sessions', ['staff_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_pages_staff_sessions_staff_id'), table_name='pages_staff_sessions')
    op.drop_table('pages_staff_sessions')
