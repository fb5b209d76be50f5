"""personalisation: follow-up items (each student's next steps), the assignment an essay answers and the
link to the same student's earlier draft

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table('essays') as batch:
        batch.add_column(sa.Column('assignment', sa.String(200), nullable=True))
        batch.add_column(sa.Column('previous_draft_id', sa.String(40), nullable=True))
        batch.create_foreign_key('fk_essays_previous_draft_id', 'essays', ['previous_draft_id'], ['id'], ondelete='SET NULL')
    op.create_table(
        'follow_ups',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('job_id', sa.String(40), sa.ForeignKey('jobs.id', ondelete='CASCADE'), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('essay_id', sa.String(40), sa.ForeignKey('essays.id', ondelete='CASCADE'), nullable=False),
        sa.Column('request', JSONType, nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('claimed_by', sa.String(200), nullable=True),
        sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('result', JSONType, nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint('job_id', 'position', name='uq_follow_ups_job_position'),
    )
    op.create_index('ix_follow_ups_status_claim', 'follow_ups', ['status', 'claimed_until'])
    op.create_index('ix_follow_ups_job_status_position', 'follow_ups', ['job_id', 'status', 'position'])
    op.create_index('ix_follow_ups_essay_id', 'follow_ups', ['essay_id'])


def downgrade() -> None:
    op.drop_index('ix_follow_ups_essay_id', table_name='follow_ups')
    op.drop_index('ix_follow_ups_job_status_position', table_name='follow_ups')
    op.drop_index('ix_follow_ups_status_claim', table_name='follow_ups')
    op.drop_table('follow_ups')
    with op.batch_alter_table('essays') as batch:
        batch.drop_constraint('fk_essays_previous_draft_id', type_='foreignkey')
        batch.drop_column('previous_draft_id')
        batch.drop_column('assignment')
