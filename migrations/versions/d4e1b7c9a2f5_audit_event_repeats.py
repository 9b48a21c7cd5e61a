"""audit events: identical events of one minute share a row with a count

Revision ID: d4e1b7c9a2f5
Revises: a7d2c9e4b1f6
Create Date: 2026-12-03 09:00:00.000000

Adds `repeat_key` (unique), `repeats` and `last_occurred_at` to `audit_events`; no row is rewritten or
lost. Rows stored before this revision keep one event each: `repeats` is 1 (the server default) and
`repeat_key` and `last_occurred_at` are NULL. A unique index allows any number of NULLs on SQLite and
PostgreSQL, so those rows never conflict with each other or with a new event; a new event of the same
minute as an old row gets a row of its own. A downgrade keeps every row but loses their counts.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd4e1b7c9a2f5'
down_revision = 'a7d2c9e4b1f6'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTER TABLE ADD COLUMN on both databases: the table is not copied, however large it is.
    op.add_column('audit_events', sa.Column('repeat_key', sa.String(length=32), nullable=True))
    op.add_column('audit_events', sa.Column('repeats', sa.Integer(), server_default='1', nullable=False))
    op.add_column('audit_events', sa.Column('last_occurred_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_audit_events_repeat_key', 'audit_events', ['repeat_key'], unique=True)


def downgrade():
    op.drop_index('ix_audit_events_repeat_key', table_name='audit_events')
    with op.batch_alter_table('audit_events') as batch_op:
        batch_op.drop_column('last_occurred_at')
        batch_op.drop_column('repeats')
        batch_op.drop_column('repeat_key')
