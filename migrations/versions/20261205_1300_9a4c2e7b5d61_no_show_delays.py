"""no-show delays

Revision ID: 9a4c2e7b5d61
Revises: 7d3f9a2b6c18
Create Date: 2026-12-05 13:00:00

An association may delay the openings of students who held a seat at one of its events where attendance was
taken and did not come: associations.no_show_delay_hours (NULL: off, as for every existing association) for
no_show_penalty_days after that event.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '9a4c2e7b5d61'
down_revision: str | Sequence[str] | None = '7d3f9a2b6c18'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('associations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('no_show_delay_hours', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('no_show_penalty_days', sa.Integer(), server_default=sa.text('30'),
                                      nullable=False))
        batch_op.create_check_constraint('no_show_delay_positive',
                                         'no_show_delay_hours IS NULL OR no_show_delay_hours > 0')
        batch_op.create_check_constraint('no_show_penalty_days_positive', 'no_show_penalty_days > 0')


def downgrade() -> None:
    with op.batch_alter_table('associations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_associations_no_show_penalty_days_positive'), type_='check')
        batch_op.drop_constraint(op.f('ck_associations_no_show_delay_positive'), type_='check')
        batch_op.drop_column('no_show_penalty_days')
        batch_op.drop_column('no_show_delay_hours')
