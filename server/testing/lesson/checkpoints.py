"""The lesson's checkpoints, described once.

Each checkpoint has one id used everywhere: the grader's test names, the
points in the JUnit report, the status checklist and the README headings.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Checkpoint:
    id: str
    step: int  # the README step that completes it
    title: str
    points: int


CHECKPOINTS = (
    Checkpoint("init", 1, "Migrations initialised with `flask db init`", 5),
    Checkpoint("history", 5, "One linear history of exactly the four lesson revisions", 15),
    Checkpoint("create_employees", 1, "Revision 1 creates `employees`", 10),
    Checkpoint("create_department", 2, "Revision 2 creates `department`", 10),
    Checkpoint("rename_table", 3, "Revision 3 renames `department` to `departments` and keeps the rows", 15),
    Checkpoint("rename_column", 4, "Revision 4 renames `address` to `location` and keeps the values", 15),
    Checkpoint("downgrades", 5, "Every downgrade reverses its upgrade and keeps the data", 10),
    Checkpoint("models_match", 5, "models.py matches the schema at revision 3", 15),
    Checkpoint("local_database", 5, "Your local database is at revision 3 with your rows", 5),
)

BY_ID = {checkpoint.id: checkpoint for checkpoint in CHECKPOINTS}

STEPS = {
    1: "Initial migration: the employees table",
    2: "Add the Department model",
    3: "Rename the table department to departments",
    4: "Rename the column address to location",
    5: "Downgrade one revision",
}
