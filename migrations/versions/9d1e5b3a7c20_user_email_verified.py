"""users: whether the provider verified the e-mail address, and an index to look an address up

A first sign-in at a provider trusted for e-mail (OIDC_<NAME>_TRUST_EMAIL) joins the account whose
verified address it shares. Existing rows get NULL (not verified): their next sign-in's job fills it in,
so none of them can be matched before the provider has said so again.

Revision ID: 9d1e5b3a7c20
Revises: c8f2a6d4e1b9
Create Date: 2026-12-07 19:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9d1e5b3a7c20'
down_revision = 'c8f2a6d4e1b9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('email_verified', sa.Boolean(), nullable=True))
        batch_op.create_index('ix_users_email', ['email'])


def downgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_index('ix_users_email')
        batch_op.drop_column('email_verified')
