"""lottery openings

Revision ID: 11e564402cac
Revises: 4e7a1c9b2d30
Create Date: 2026-12-05 10:52:18.917167

An event may open by lottery: events.lottery_minutes (the window after registration opens), and the draw's
seed, time and author once it ran. A registration may be an entry in the draw (status 'entered'). Every
existing event stays first come (lottery_minutes NULL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import events.models

revision: str = '11e564402cac'
down_revision: str | Sequence[str] | None = '4e7a1c9b2d30'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = "status IN ('confirmed', 'waitlisted', 'cancelled'{})"


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lottery_minutes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('lottery_seed', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('lottery_drawn_at', events.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('lottery_drawn_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_events_lottery_drawn_by_id_users'), 'users',
                                    ['lottery_drawn_by_id'], ['id'], ondelete='SET NULL')
        batch_op.create_check_constraint('lottery_minutes_positive', 'lottery_minutes IS NULL OR lottery_minutes > 0')
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_registrations_registration_status'), type_='check')
        batch_op.create_check_constraint('registration_status', _STATUSES.format(", 'entered'"))


def downgrade() -> None:
    # Entries that were never drawn become nothing: they held no seat and no place in line.
    registrations = sa.table('registrations', sa.column('status', sa.String()))
    op.get_bind().execute(sa.delete(registrations).where(registrations.c.status == 'entered'))
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_registrations_registration_status'), type_='check')
        batch_op.create_check_constraint('registration_status', _STATUSES.format(""))
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_events_lottery_minutes_positive'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_events_lottery_drawn_by_id_users'), type_='foreignkey')
        batch_op.drop_column('lottery_drawn_by_id')
        batch_op.drop_column('lottery_drawn_at')
        batch_op.drop_column('lottery_seed')
        batch_op.drop_column('lottery_minutes')
