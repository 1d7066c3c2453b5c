"""The private parts of Alembic the lesson's tools rely on, in one place.

Alembic has no public way to do these three things; each is small, and
server/testing/tests/test_alembic_internals.py checks every one against the
installed Alembic, failing with the name of the part that changed.

- `installed_as_op(operations)`: make `from alembic import op` in a script
  call our recording Operations (Alembic's own `Operations.context` always
  installs a plain Operations).
- `BatchTarget`: what `batch_op.<method>()` reads of the batch it belongs to
  (`operations.impl.table_name` / `.schema`), without Alembic's batch
  implementation, which would reflect the table from a database.
- `new_revision_path(script_directory, script)`: the file `flask db migrate`
  is about to write, from Alembic's own naming rule (file_template).
"""
import contextlib
import datetime
from dataclasses import dataclass
from typing import Optional

from alembic import op as op_module


@contextlib.contextmanager
def installed_as_op(operations):
    """Make `from alembic import op` call `operations` (the module forwards to `_proxy`)."""
    missing = object()
    previous = getattr(op_module, "_proxy", missing)
    op_module._proxy = operations
    try:
        yield
    finally:
        if previous is missing:
            del op_module._proxy
        else:
            op_module._proxy = previous


@dataclass
class BatchTarget:
    table_name: str
    schema: Optional[str] = None


def new_revision_path(script_directory, script):
    """The path Alembic is about to write for a generated revision (`script`, a RevisionOp)."""
    return script_directory._rev_path(
        script.version_path or script_directory.versions, script.rev_id, script.message, datetime.datetime.now()
    )
