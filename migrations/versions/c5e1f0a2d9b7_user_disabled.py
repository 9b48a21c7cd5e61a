"""user disabled flag

Revision ID: c5e1f0a2d9b7
Revises: b4b7c34182b3
Create Date: 2026-12-01 21:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c5e1f0a2d9b7'
down_revision = 'b4b7c34182b3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('disabled', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('status_version', sa.BigInteger(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('status_version')
        batch_op.drop_column('disabled')
