"""Migration files and code as students write them, shared by the grader's tests."""
import textwrap


def revision_file(revision, down_revision, upgrade, downgrade, message):
    body = textwrap.dedent('''\
        """{message}

        Revision ID: {revision}
        Revises: {down}
        Create Date: 2024-05-01 10:00:00.000000

        """
        from alembic import op
        import sqlalchemy as sa


        # revision identifiers, used by Alembic.
        revision = {revision!r}
        down_revision = {down_revision!r}
        branch_labels = None
        depends_on = None


        def upgrade():
        {upgrade}


        def downgrade():
        {downgrade}
        ''')
    return body.format(
        message=message, revision=revision, down=down_revision or "", down_revision=down_revision,
        upgrade=textwrap.indent(textwrap.dedent(upgrade).strip(), "    "),
        downgrade=textwrap.indent(textwrap.dedent(downgrade).strip(), "    "),
    )


CREATE_EMPLOYEES = """
op.create_table('employees',
sa.Column('id', sa.Integer(), nullable=False),
sa.Column('name', sa.String(), nullable=False),
sa.Column('salary', sa.Integer(), nullable=True),
sa.PrimaryKeyConstraint('id', name=op.f('pk_employees'))
)
"""
CREATE_DEPARTMENT = """
op.create_table('department',
sa.Column('id', sa.Integer(), nullable=False),
sa.Column('name', sa.String(), nullable=False),
sa.Column('address', sa.String(), nullable=True),
sa.PrimaryKeyConstraint('id', name=op.f('pk_department'))
)
"""
CREATE_DEPARTMENTS = CREATE_DEPARTMENT.replace("department", "departments")


# The shape of env.py from Flask-Migrate releases before 4 (db.get_engine()).
OLDER_ENV_PY = """\
from __future__ import with_statement

import logging
from logging.config import fileConfig

from flask import current_app

from alembic import context

config = context.config
fileConfig(config.config_file_name)
logger = logging.getLogger('alembic.env')

config.set_main_option(
    'sqlalchemy.url',
    str(current_app.extensions['migrate'].db.get_engine().url).replace('%', '%%'))
target_metadata = current_app.extensions['migrate'].db.metadata


def run_migrations_offline():
    url = config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connectable = current_app.extensions['migrate'].db.get_engine()
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            **current_app.extensions['migrate'].configure_args
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
"""
