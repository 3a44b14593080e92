"""registration questions

Revision ID: ec8c6bb90a42
Revises: b6e1d3f8a9c2
Create Date: 2026-12-05 19:13:58

An event's questions (events.questions, a JSON list; empty for every existing event) and the last moment to
change the answers (events.answers_close_at; NULL: until the event starts); each student's answers in a table
of their own, keyed by event and student (registration_answers).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import events.models

revision: str = 'ec8c6bb90a42'
down_revision: str | Sequence[str] | None = 'b6e1d3f8a9c2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'registration_answers',
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('answers', sa.JSON(), nullable=False),
        sa.Column('updated_at', events.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_registration_answers_event_id_events'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_registration_answers_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('event_id', 'user_id', name=op.f('pk_registration_answers')),
    )
    with op.batch_alter_table('registration_answers', schema=None) as batch_op:
        batch_op.create_index('ix_registration_answers_user_id', ['user_id'], unique=False)
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('questions', sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('answers_close_at', events.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('answers_close_at')
        batch_op.drop_column('questions')
    with op.batch_alter_table('registration_answers', schema=None) as batch_op:
        batch_op.drop_index('ix_registration_answers_user_id')
    op.drop_table('registration_answers')
