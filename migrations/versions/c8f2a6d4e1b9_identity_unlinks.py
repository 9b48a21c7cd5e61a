"""identity unlinks: when each identity was last unlinked from each account, so a late link job cannot put it back

Revision ID: c8f2a6d4e1b9
Revises: b6c3e9f1a4d8
Create Date: 2026-12-07 06:00:00.000000

Creates the empty `identity_unlinks` table; no existing row is read or changed. A downgrade drops it,
and with it the protection against a link job retried after its unlink.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c8f2a6d4e1b9'
down_revision = 'b6c3e9f1a4d8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'identity_unlinks',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('issuer', sa.String(length=255), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('user_issuer', sa.String(length=255), nullable=False),
        sa.Column('user_subject', sa.String(length=255), nullable=False),
        sa.Column('unlinked_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint(
            'issuer', 'subject', 'user_issuer', 'user_subject', name='uq_identity_unlinks_identity_user'
        ),
    )


def downgrade():
    op.drop_table('identity_unlinks')
