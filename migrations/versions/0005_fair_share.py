"""fair share: a school's weight in the claim order, and the indexes the fair claim reads

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('schools') as batch:
        batch.add_column(sa.Column('share_weight', sa.Float(), nullable=False, server_default='1'))
    # the fair claim's active jobs: only queued and running ones are in it, per teacher in age order
    op.create_index('ix_jobs_active', 'jobs', ['kind', 'teacher_id', 'created_at'],
                    postgresql_where=sa.text("status IN ('queued', 'running')"),
                    sqlite_where=sa.text("status IN ('queued', 'running')"))
    op.create_index('ix_essays_job_status_position', 'essays', ['job_id', 'status', 'position'])
    op.create_index('ix_lesson_plans_job_status_position', 'lesson_plans', ['job_id', 'status', 'position'])


def downgrade() -> None:
    op.drop_index('ix_lesson_plans_job_status_position', table_name='lesson_plans')
    op.drop_index('ix_essays_job_status_position', table_name='essays')
    op.drop_index('ix_jobs_active', table_name='jobs')
    with op.batch_alter_table('schools') as batch:
        batch.drop_column('share_weight')
