"""e-mail verification and throttles with growing delays

Revision ID: 4e7a1c9b2d30
Revises: 9b3f2c7d1e44
Create Date: 2026-12-05 01:00:00.000000

users.email_verified_at: an account may register, hold a feed or a role only once its owner opened the link
sent to the address. The accounts that exist at upgrade time are marked verified, so the demo and staff
accounts keep working. login_failures (one row per failure, a hard 15-minute wall) gives way to throttles
(one row per key, counted and checked in one statement); the recorded failures are dropped, which only
forgives the attempts of the last minutes.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from events.models import UTCDateTime

revision: str = '4e7a1c9b2d30'
down_revision: str | Sequence[str] | None = '9b3f2c7d1e44'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_verified_at', UTCDateTime(), nullable=True))
    users = sa.table('users', sa.column('email_verified_at', UTCDateTime()))
    op.get_bind().execute(sa.update(users).values(email_verified_at=datetime.now(UTC)))
    op.create_table('throttles',
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=254), nullable=False),
    sa.Column('address', sa.String(length=45), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_allowed_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'subject', 'address', name=op.f('pk_throttles'))
    )
    with op.batch_alter_table('throttles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_throttles_updated_at'), ['updated_at'], unique=False)
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failures_email_created_at')
        batch_op.drop_index('ix_login_failures_address_created_at')
    op.drop_table('login_failures')


def downgrade() -> None:
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('address', sa.String(length=45), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index('ix_login_failures_address_created_at', ['address', 'created_at'], unique=False)
        batch_op.create_index('ix_login_failures_email_created_at', ['email', 'created_at'], unique=False)
    with op.batch_alter_table('throttles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_throttles_updated_at'))
    op.drop_table('throttles')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('email_verified_at')
