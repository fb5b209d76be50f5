"""calibration by example: stored rubrics, their scored examples, each job's frozen calibration set, and
the link from a recalibrated job's essay to the one it regrades

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        'rubrics',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('teacher_id', sa.String(40), sa.ForeignKey('teachers.id', ondelete='CASCADE'), nullable=False),
        sa.Column('school_id', sa.String(40), sa.ForeignKey('schools.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('rubric', JSONType, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_rubrics_teacher_created', 'rubrics', ['teacher_id', 'created_at'])
    op.create_index('ix_rubrics_school_id', 'rubrics', ['school_id'])
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('rubric_id', sa.String(40), nullable=True))
        batch.create_foreign_key('fk_jobs_rubric_id', 'rubrics', ['rubric_id'], ['id'], ondelete='SET NULL')
        batch.create_index('ix_jobs_rubric_id', ['rubric_id'])
    with op.batch_alter_table('essays') as batch:
        batch.add_column(sa.Column('previous_essay_id', sa.String(40), nullable=True))
        batch.create_foreign_key('fk_essays_previous_essay_id', 'essays', ['previous_essay_id'], ['id'], ondelete='SET NULL')
    op.create_table(
        'rubric_examples',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('rubric_id', sa.String(40), sa.ForeignKey('rubrics.id', ondelete='CASCADE'), nullable=False),
        sa.Column('job_id', sa.String(40), sa.ForeignKey('jobs.id', ondelete='SET NULL'), nullable=True),
        sa.Column('essay_id', sa.String(40), sa.ForeignKey('essays.id', ondelete='CASCADE'), nullable=True),
        sa.Column('teacher_id', sa.String(40), sa.ForeignKey('teachers.id', ondelete='SET NULL'), nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('score', sa.Float(), nullable=True),
        sa.Column('traits', JSONType, nullable=False),
        sa.Column('source', sa.String(16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('rubric_id', 'essay_id', name='uq_rubric_examples_rubric_essay'),
    )
    op.create_index('ix_rubric_examples_rubric_created', 'rubric_examples', ['rubric_id', 'created_at'])
    op.create_table(
        'calibration_sets',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('job_id', sa.String(40), sa.ForeignKey('jobs.id', ondelete='CASCADE'), nullable=False, unique=True),
        sa.Column('rubric_id', sa.String(40), sa.ForeignKey('rubrics.id', ondelete='SET NULL'), nullable=True),
        sa.Column('rubric', JSONType, nullable=False),
        sa.Column('examples', JSONType, nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('calibration_sets')
    op.drop_index('ix_rubric_examples_rubric_created', table_name='rubric_examples')
    op.drop_table('rubric_examples')
    with op.batch_alter_table('essays') as batch:
        batch.drop_constraint('fk_essays_previous_essay_id', type_='foreignkey')
        batch.drop_column('previous_essay_id')
    with op.batch_alter_table('jobs') as batch:
        batch.drop_index('ix_jobs_rubric_id')
        batch.drop_constraint('fk_jobs_rubric_id', type_='foreignkey')
        batch.drop_column('rubric_id')
    op.drop_index('ix_rubrics_school_id', table_name='rubrics')
    op.drop_index('ix_rubrics_teacher_created', table_name='rubrics')
    op.drop_table('rubrics')
