"""restricted events

Revision ID: e6d308dd7e49
Revises: ec8c6bb90a42
Create Date: 2026-12-05 19:20:00

Who may register for an event (events.restricted_to: everyone, as for every existing event; the organising
association's members; some promo years, events.restricted_promos; an invitation list, events.restricted_emails)
and whether a members' event is hidden from everyone else (events.hidden_from_others).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'e6d308dd7e49'
down_revision: str | Sequence[str] | None = 'ec8c6bb90a42'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('restricted_to', sa.String(length=16), server_default=sa.text("'everyone'"),
                                      nullable=False))
        batch_op.add_column(sa.Column('restricted_promos', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('restricted_emails', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('hidden_from_others', sa.Boolean(), server_default=sa.text('false'),
                                      nullable=False))
        batch_op.create_check_constraint('restricted_to_known',
                                         "restricted_to IN ('everyone', 'members', 'promos', 'invited')")
        batch_op.create_check_constraint('hidden_only_for_members',
                                         "NOT hidden_from_others OR restricted_to = 'members'")


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_events_hidden_only_for_members'), type_='check')
        batch_op.drop_constraint(op.f('ck_events_restricted_to_known'), type_='check')
        batch_op.drop_column('hidden_from_others')
        batch_op.drop_column('restricted_emails')
        batch_op.drop_column('restricted_promos')
        batch_op.drop_column('restricted_to')
