"""job outbox keeps the request id of the request that queued the job

Revision ID: a7d2c9e4b1f6
Revises: f3c9a7b1d5e2
Create Date: 2026-12-02 04:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7d2c9e4b1f6'
down_revision = 'f3c9a7b1d5e2'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable: rows written before this revision (and jobs queued outside a request) have none.
    with op.batch_alter_table('job_outbox') as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('job_outbox') as batch_op:
        batch_op.drop_column('request_id')
