"""grading results: score may be null (a meaningless essay is not given a score)

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('grading_results') as batch:
        batch.alter_column('score', existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    # a withheld score has no value to restore: such rows take the scale's floor of 0 before NOT NULL returns
    op.execute("UPDATE grading_results SET score = 0 WHERE score IS NULL")
    with op.batch_alter_table('grading_results') as batch:
        batch.alter_column('score', existing_type=sa.Float(), nullable=False)
