"""priority openings

Revision ID: 7d3f9a2b6c18
Revises: 5c2e8d41a7f3
Create Date: 2026-12-05 12:30:00

Registration may open earlier for groups of students, each at its own time: the organising association's
members (events.members_open_at), some promo years (priority_promos from promos_open_at), a list of
addresses (priority_emails from emails_open_at). Every existing event has no such group (NULLs).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import events.models

revision: str = '7d3f9a2b6c18'
down_revision: str | Sequence[str] | None = '5c2e8d41a7f3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('members_open_at', events.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('promos_open_at', events.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('priority_promos', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('emails_open_at', events.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('priority_emails', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('priority_emails')
        batch_op.drop_column('emails_open_at')
        batch_op.drop_column('priority_promos')
        batch_op.drop_column('promos_open_at')
        batch_op.drop_column('members_open_at')
