"""user identities: the sign-ins an account accepts (its own, and identities linked from other providers)

Revision ID: b6c3e9f1a4d8
Revises: d4e1b7c9a2f5
Create Date: 2026-12-10 09:00:00.000000

Creates `user_identities` and gives every existing user one row: their primary identity, the
(issuer, subject) of their users row, with `linked_at` = the row's `created_at` and `last_used_at` =
its `updated_at`. No users row is read into Python or changed; the copy is one INSERT … SELECT. A
downgrade drops the table, and with it every linked identity.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b6c3e9f1a4d8'
down_revision = 'd4e1b7c9a2f5'
branch_labels = None
depends_on = None

# provider_settings.SINGLE_PROVIDER: the one provider of the OIDC_ISSUER form, which every user stored
# before this revision signed in with. Written out, as a migration never imports the app's code.
SINGLE_PROVIDER = 'oidc'


def upgrade():
    op.create_table(
        'user_identities',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('issuer', sa.String(length=255), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('issuer', 'subject', name='uq_user_identities_issuer_subject'),
    )
    op.create_index('ix_user_identities_user_id', 'user_identities', ['user_id'], unique=False)
    # (issuer, subject) is unique in users, so this cannot conflict.
    op.execute(
        sa.text(
            'INSERT INTO user_identities (user_id, provider, issuer, subject, linked_at, last_used_at)'
            ' SELECT id, :provider, issuer, subject, created_at, updated_at FROM users ORDER BY id'
        ).bindparams(provider=SINGLE_PROVIDER)
    )


def downgrade():
    op.drop_index('ix_user_identities_user_id', table_name='user_identities')
    op.drop_table('user_identities')
