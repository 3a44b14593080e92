"""personal feed tokens stored as a SHA-256 hash

Revision ID: 9b3f2c7d1e44
Revises: 56cd06d50cb6
Create Date: 2026-12-02 12:30:00.000000

users.feed_token held the secret of each personal calendar feed in plain text: whoever read the table (a
backup, a dump, a read-only leak) could open every student's feed. Only its SHA-256 is kept now, as for
session tokens. The upgrade hashes the existing tokens, so the addresses students already subscribed to keep
working. The downgrade cannot recover a token from its hash: it leaves feed_token empty, and every student
then has to make a new feed address.
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '9b3f2c7d1e44'
down_revision: str | Sequence[str] | None = '56cd06d50cb6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_users = sa.table('users', sa.column('id', sa.Integer()), sa.column('feed_token', sa.String(64)),
                  sa.column('feed_token_hash', sa.String(64)))


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('feed_token_hash', sa.String(length=64), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(_users.c.id, _users.c.feed_token)
                              .where(_users.c.feed_token.is_not(None))).all()
    if rows:
        connection.execute(
            sa.update(_users).where(_users.c.id == sa.bindparam('user_id'))
            .values(feed_token_hash=sa.bindparam('token_hash')),
            [{'user_id': row.id, 'token_hash': hashlib.sha256(row.feed_token.encode()).hexdigest()} for row in rows])
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_feed_token'), type_='unique')
        batch_op.drop_column('feed_token')
        batch_op.create_index(batch_op.f('ix_users_feed_token_hash'), ['feed_token_hash'], unique=True)


def downgrade() -> None:
    # A hash cannot be turned back into its token: every feed address stops working (feed_token stays NULL).
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_feed_token_hash'))
        batch_op.drop_column('feed_token_hash')
        batch_op.add_column(sa.Column('feed_token', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_users_feed_token'), ['feed_token'])
