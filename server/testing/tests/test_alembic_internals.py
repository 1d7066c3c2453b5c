"""The private parts of Alembic in testing/databases/alembic_internals.py, checked
against the installed Alembic: an upgrade that changes one fails here, by name."""
from pathlib import Path

import alembic
from alembic import command
from alembic import op as op_module
from alembic.config import Config
from alembic.operations import Operations, ops
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from testing.databases import operations
from testing.databases.alembic_internals import installed_as_op, new_revision_path

SCRIPT = """
from alembic import op
import sqlalchemy as sa

revision = 'aaaa00000001'
down_revision = None


def upgrade():
    with op.batch_alter_table('departments', schema='lesson') as batch_op:
        batch_op.alter_column('address', new_column_name='location')
        batch_op.add_column(sa.Column('floor', sa.Integer(), nullable=True))
        batch_op.create_index('ix_departments_floor', ['floor'])


def downgrade():
    op.rename_table('departments', 'department')
"""


def test_installed_as_op_routes_alembic_op_to_our_operations_and_restores_it():
    recorded = []

    class Recorder(Operations):
        def invoke(self, operation):
            recorded.append(operation)

    before = getattr(op_module, "_proxy", None)
    with installed_as_op(Recorder(MigrationContext.configure(dialect_name="sqlite"))):
        op_module.drop_table("employees")
    assert [type(o) for o in recorded] == [ops.DropTableOp], f"alembic.op._proxy no longer works in {alembic.__version__}"
    assert getattr(op_module, "_proxy", None) is before


def test_batch_operations_read_only_the_table_and_schema_of_their_batch(tmp_path):
    path = tmp_path / "aaaa00000001_batch.py"
    path.write_text(SCRIPT, encoding="utf-8")
    recorded = operations.record_script_operations(path)
    assert recorded.error is None, f"batch_op needs more than BatchTarget in Alembic {alembic.__version__}: {recorded.error!r}"
    (block,) = recorded.operations
    assert isinstance(block, ops.ModifyTableOps)
    assert [(type(o).__name__, o.table_name, o.schema) for o in block.ops] == [
        ("AlterColumnOp", "departments", "lesson"),
        ("AddColumnOp", "departments", "lesson"),
        ("CreateIndexOp", "departments", "lesson"),
    ]


def test_new_revision_path_is_the_file_alembic_then_writes(tmp_path):
    config = Config(str(tmp_path / "alembic.ini"))
    command.init(config, str(tmp_path / "migrations"))
    config = Config(str(tmp_path / "alembic.ini"))
    directive = ops.MigrationScript("bbbb00000002", ops.UpgradeOps([]), ops.DowngradeOps([]),
                                    message="rename department")
    predicted = new_revision_path(ScriptDirectory.from_config(config), directive)
    written = command.revision(config, message="rename department", rev_id="bbbb00000002")
    assert Path(predicted) == Path(written.path), f"ScriptDirectory._rev_path changed in Alembic {alembic.__version__}"
