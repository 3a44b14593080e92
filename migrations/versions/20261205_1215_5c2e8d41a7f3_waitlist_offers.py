"""waitlist offers

Revision ID: 5c2e8d41a7f3
Revises: 11e564402cac
Create Date: 2026-12-05 12:15:00

An event's promotions from the waitlist may be offers the student accepts within events.offer_hours: a
registration may be 'offered' (holding a seat until registrations.offer_expires_at) or 'expired' (an offer
not accepted in time). Every existing event keeps promotions that confirm at once (offer_hours NULL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import events.models

revision: str = '5c2e8d41a7f3'
down_revision: str | Sequence[str] | None = '11e564402cac'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = "status IN ('confirmed', 'waitlisted', 'cancelled', 'entered'{})"


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offer_hours', sa.Integer(), nullable=True))
        batch_op.create_check_constraint('offer_hours_positive', 'offer_hours IS NULL OR offer_hours > 0')
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offer_expires_at', events.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_registrations_offer_expires_at'), ['offer_expires_at'], unique=False)
        batch_op.drop_constraint(op.f('ck_registrations_registration_status'), type_='check')
        batch_op.create_check_constraint('registration_status', _STATUSES.format(", 'offered', 'expired'"))


def downgrade() -> None:
    # A pending offer held a seat: it becomes the confirmed seat it would have been without offers. An expired
    # one is a student who is no longer registered.
    registrations = sa.table('registrations', sa.column('status', sa.String()))
    bind = op.get_bind()
    bind.execute(sa.update(registrations).where(registrations.c.status == 'offered').values(status='confirmed'))
    bind.execute(sa.update(registrations).where(registrations.c.status == 'expired').values(status='cancelled'))
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_registrations_registration_status'), type_='check')
        batch_op.create_check_constraint('registration_status', _STATUSES.format(""))
        batch_op.drop_index(batch_op.f('ix_registrations_offer_expires_at'))
        batch_op.drop_column('offer_expires_at')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_events_offer_hours_positive'), type_='check')
        batch_op.drop_column('offer_hours')
