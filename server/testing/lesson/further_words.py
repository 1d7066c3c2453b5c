"""The words of the lesson's optional "Going further" steps (further_steps.py declares
their schema and code): what each revision does, what models.py should be once the
chain ends after one, what a student who stops at step 5 is told, and the names of
their mistakes for instructors."""
from .definition import EndWords, FurtherWords, RevisionWords


def end_words(position, step, says):
    return EndWords(
        model_expected=f"Going further, your database is at revision {position}, the head (step {step}), so "
                       f"models.py describes revision {position}: {says}.",
        model_fix="Change {models} (not the migrations) to describe revision " + str(position) +
                  ", the head ({revision}); {intro}\n\n{model}",
        model_intro="the models should read:",
    )


FURTHER_WORDS = FurtherWords(
    revisions={
        "add_email": RevisionWords(
            short="adds `email` NOT NULL to `employees`",
            expected="adds column `email` (VARCHAR, NOT NULL) to `employees`: added nullable, each existing row "
                     "filled in, then made NOT NULL",
            how="Run `flask db upgrade head`, put `location` back in models.py, add "
                "`email = db.Column(db.String, nullable=False)` to Employee, run `flask db migrate -m \"add email\"`, "
                "make the new script add the column nullable, fill it in and then make it NOT NULL (README, step 6), "
                "then `flask db upgrade head`.",
        ),
        "fill_building": RevisionWords(
            short="fills the new column `building` of `departments` from `location`",
            expected="adds column `building` (VARCHAR) to `departments` and fills it with the part of `location` "
                     "before the comma (\"Building A\"); its downgrade drops it and keeps every `location`",
            how="Add `building = db.Column(db.String)` to Department, run `flask db migrate -m \"add building\"`, "
                "add the data migration of README step 7 after its add_column, then `flask db upgrade head`.",
        ),
        "index_email": RevisionWords(
            short="creates the index `ix_employees_email`",
            expected="creates an index on `employees.email`: CREATE INDEX CONCURRENTLY on PostgreSQL, outside the "
                     "migration's transaction; its downgrade drops it",
            how="Add `index=True` to Employee's email column, run `flask db migrate -m \"index email\"`, wrap the "
                "create_index and drop_index in `with op.get_context().autocommit_block():` with "
                "`postgresql_concurrently=True` (README step 8), then `flask db upgrade head`.",
        ),
        "add_phone": RevisionWords(
            short="adds `phone` to `employees`",
            expected="adds column `phone` (VARCHAR, NULL allowed) to `employees` and follows revision 7",
            how="Add `phone = db.Column(db.String)` to Employee, run `flask db migrate -m \"add phone\"`, then "
                "`flask db upgrade` (README step 9).",
        ),
        "add_budget": RevisionWords(
            short="adds `budget` to `departments` (the teammate's revision)",
            expected="adds column `budget` (INTEGER, NULL allowed) to `departments` and follows revision 7, as its "
                     "author made it: other databases ran it from there",
            how="Make the teammate's revision from revision 7: `flask db revision --head <revision 7's id> --splice "
                "-m \"add budget\"`, give it the add_column and drop_column of README step 9, and add "
                "`budget = db.Column(db.Integer)` to Department.",
        ),
        "merge_heads": RevisionWords(
            short="merges revisions 8 and 9",
            expected="names both revision 8 and revision 9 in its down_revision (a tuple) and changes no table",
            how="With two heads `flask db upgrade` refuses (\"Multiple head revisions are present\"): run "
                "`flask db merge heads -m \"merge phone and budget\"`, then `flask db upgrade` (README step 9).",
        ),
    },
    ends=(
        end_words(
            5, 6,
            "Employee with `email` NOT NULL, Department with `location`",
        ),
        end_words(
            6, 7,
            "Employee with `email` NOT NULL, Department with `location` and `building`",
        ),
        end_words(
            7, 8,
            "Employee with `email` NOT NULL and index=True, Department with `location` and `building`",
        ),
        end_words(8, 9, "Employee with `email` and `phone`, Department with `location` and `building`"),
        end_words(9, 9, "Employee with `email` and `phone`, Department with `location`, `building` and `budget`"),
        end_words(10, 9, "Employee with `email` and `phone`, Department with `location`, `building` and `budget`"),
    ),
    legacy=RevisionWords(
        short="a database made with `db.create_all()`, stamped",
        expected="the database named in server/legacy.env has every table and column of the revision its "
                 "alembic_version names, that revision is the head, and its rows are still there",
        how="Make the second database with `db.create_all()` in `flask --env-file legacy.env shell`, add a few "
            "rows, then record where it is without running anything: `flask --env-file legacy.env db stamp head` "
            "(README, step 10).",
    ),
    intro="The steps after step 5 (Going further) are optional: the lesson's score counts steps 1-5 only, and "
          "these earn bonus points of their own. README.md, \"Going further\", shows how.",
    mistake_names={
        "add_email:upgrade_fails": "NOT NULL `email` added with no default to a table with rows (or a failing backfill)",
        "add_email:not_filled": "`email` made NOT NULL with an empty default instead of a backfill",
        "add_email:missing_revision": "step 6 not done (optional)",
        "add_email:downgrade_not_reversed": "the NOT NULL column's downgrade does not reverse its upgrade",
        "fill_building:upgrade_fails": "data migration fails (a raw SQL string, which SQLAlchemy 2 refuses)",
        "fill_building:not_filled": "data migration left `building` empty or wrong",
        "fill_building:missing_revision": "step 7 not done (optional)",
        "fill_building:downgrade_not_reversed": "the data migration does not reverse (downgrade left empty)",
        "index_email:upgrade_fails": "index creation fails (CONCURRENTLY inside the migration's transaction)",
        "index_email:no_index": "no index on `employees.email`",
        "index_email:not_concurrent": "index created without CONCURRENTLY on PostgreSQL",
        "index_email:missing_revision": "step 8 not done (optional)",
        "index_email:downgrade_not_reversed": "the index's downgrade does not drop it",
        "add_phone:missing_revision": "step 9 not done (optional)",
        "add_phone:upgrade_fails": "the `phone` revision fails on upgrade",
        "add_phone:downgrade_not_reversed": "the `phone` revision's downgrade does not reverse its upgrade",
        "add_phone:rewritten_parent": "a \"merge\" done by changing revision 8's down_revision to follow the "
                                      "teammate's",
        "add_budget:missing_revision": "the teammate's revision of step 9 not made (optional)",
        "add_budget:branch_deleted": "a \"merge\" done by deleting the teammate's revision",
        "add_budget:rewritten_parent": "a \"merge\" done by changing the teammate's down_revision to follow "
                                       "revision 8",
        "add_budget:upgrade_fails": "the teammate's `budget` revision fails on upgrade",
        "add_budget:downgrade_not_reversed": "the teammate's revision's downgrade does not reverse its upgrade",
        "merge_heads:missing_revision": "no merge revision yet (optional)",
        "merge_heads:not_merged": "two heads left unmerged (`flask db upgrade` refuses)",
        "merge_heads:not_a_merge": "revision 10 does not name both branches as its down_revision",
        "merge_heads:wrong_schema": "the merge revision also changes the schema",
        "stamp_legacy:legacy_not_stamped": "a database made with `db.create_all()` never stamped (no revision)",
        "stamp_legacy:legacy_wrong_revision": "a database stamped at a revision its tables are not at",
        "stamp_legacy:legacy_behind": "a stamped database left behind the head (no `flask db upgrade` after)",
        "stamp_legacy:legacy_unknown_revision": "a database stamped with a revision the chain does not have",
        "stamp_legacy:legacy_rows_missing": "a database stamped with its rows gone (made again instead)",
        "stamp_legacy:legacy_unreadable": "the stamped database cannot be read",
    },
)
