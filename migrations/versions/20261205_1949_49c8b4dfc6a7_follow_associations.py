"""follow associations

Revision ID: 49c8b4dfc6a7
Revises: e6d308dd7e49
Create Date: 2026-12-05 19:49:00

Students follow associations (follows), with their choice of e-mails for the followed associations' new events
(users.follow_emails: at once, as for everyone now, or a weekly digest) and the moment their follows last
changed (users.follows_changed_at: their personal feed changes then). Events record when they were published
(events.published_at; the events published already get the time they were submitted, or else created).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import events.models

revision: str = '49c8b4dfc6a7'
down_revision: str | Sequence[str] | None = 'e6d308dd7e49'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'follows',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('association_id', sa.Integer(), nullable=False),
        sa.Column('created_at', events.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['association_id'], ['associations.id'],
                                name=op.f('fk_follows_association_id_associations'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_follows_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'association_id', name=op.f('pk_follows')),
    )
    with op.batch_alter_table('follows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_follows_association_id'), ['association_id'], unique=False)
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('published_at', events.models.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE events SET published_at = COALESCE(submitted_at, created_at) "
               "WHERE status IN ('approved', 'cancelled')")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('follow_emails', sa.String(length=8), server_default=sa.text("'instant'"),
                                      nullable=False))
        batch_op.add_column(sa.Column('follows_changed_at', events.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('follows_changed_at')
        batch_op.drop_column('follow_emails')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('published_at')
    with op.batch_alter_table('follows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_follows_association_id'))
    op.drop_table('follows')
