"""Data-loss review of migrations (filled in by the review work)."""
import logging

logger = logging.getLogger("alembic.env")


def review_new_migration(context, revision, directives):
    """Alembic's process_revision_directives hook for `flask db migrate`."""
    # Keep Flask-Migrate's behaviour: no file when autogenerate finds nothing.
    if getattr(context.config.cmd_opts, "autogenerate", False):
        script = directives[0]
        if script.upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")
