"""reserved seats

Revision ID: b6e1d3f8a9c2
Revises: 9a4c2e7b5d61
Create Date: 2026-12-05 13:30:00

An event may hold some of its seats for its priority groups until a set time (events.reserved_seats,
reserved_until); a registration records whether its seat was one of them (registrations.from_reserve). Every
existing event holds none, and every existing seat was an ordinary one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import events.models

revision: str = 'b6e1d3f8a9c2'
down_revision: str | Sequence[str] | None = '9a4c2e7b5d61'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reserved_seats', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reserved_until', events.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint('reserved_seats_within_capacity',
                                         'reserved_seats IS NULL OR (reserved_seats > 0 AND reserved_seats <= capacity)')
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('from_reserve', sa.Boolean(), server_default=sa.text('false'), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.drop_column('from_reserve')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_events_reserved_seats_within_capacity'), type_='check')
        batch_op.drop_column('reserved_until')
        batch_op.drop_column('reserved_seats')
