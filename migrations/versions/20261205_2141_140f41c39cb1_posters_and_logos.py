"""posters and logos

Revision ID: 140f41c39cb1
Revises: 49c8b4dfc6a7
Create Date: 2026-12-05 21:41:25.578536

Events get a poster and associations a logo: the key of a stored image (hyperion/images.py) and its text
alternative, required whenever there is an image.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '140f41c39cb1'
down_revision: str | Sequence[str] | None = '49c8b4dfc6a7'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('associations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('logo', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('logo_alt', sa.String(length=300), server_default=sa.text("''"), nullable=False))
        batch_op.create_check_constraint('logo_has_alt', "logo IS NULL OR logo_alt <> ''")
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('poster', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('poster_alt', sa.String(length=300), server_default=sa.text("''"),
                                      nullable=False))
        batch_op.create_check_constraint('poster_has_alt', "poster IS NULL OR poster_alt <> ''")


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_events_poster_has_alt'), type_='check')
        batch_op.drop_column('poster_alt')
        batch_op.drop_column('poster')
    with op.batch_alter_table('associations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_associations_logo_has_alt'), type_='check')
        batch_op.drop_column('logo_alt')
        batch_op.drop_column('logo')
