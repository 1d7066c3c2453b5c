"""A second, small lesson, declared only as data: proof that the engine grades
whatever lesson it is given, with no module of its own to change.

    1. create the table `books` (id, name NOT NULL, author)
    2. add a NOT NULL column `pages` to a table that has rows: add it
       nullable, fill it in, then make it NOT NULL
    3. rename the column `author` to `writer`

The lesson ends at revision 3, its head. Its words are declared apart, in
second_lesson_words.py. Its files (app.py, models.py and the three
revisions) are written here as a student would write them.
"""
from testing.lesson.definition import (
    AddColumn, Checkpoint, CreateTable, DataSet, EndState, Lesson, RenameColumn, Revision, Spec,
)
from .second_lesson_words import LIBRARY_WORDS

CHECKPOINTS = (
    Checkpoint("init", 1, "Migrations initialised with `flask db init`", 10),
    Checkpoint("history", 3, "One linear history of the three revisions", 10),
    Checkpoint("create_books", 1, "Revision 1 creates `books`", 15),
    Checkpoint("add_pages", 2, "Revision 2 adds `pages` NOT NULL to a table with rows", 20),
    Checkpoint("rename_author", 3, "Revision 3 renames `author` to `writer` and keeps the values", 20),
    Checkpoint("downgrades", 3, "Every downgrade reverses its upgrade and keeps the data", 10),
    Checkpoint("models_match", 3, "models.py matches the schema at revision 3", 15),
    Checkpoint("local_database", 3, "Your local database is at revision 3 with your rows", 0),
)
BY_ID = {checkpoint.id: checkpoint for checkpoint in CHECKPOINTS}

CREATE_BOOKS = (
    "op.create_table('books',",
    "    sa.Column('id', sa.Integer(), nullable=False),",
    "    sa.Column('name', sa.String(), nullable=False),",
    "    sa.Column('author', sa.String(), nullable=True),",
    "    sa.PrimaryKeyConstraint('id', name=op.f('pk_books'))",
    ")",
)
ADD_PAGES = (
    "op.add_column('books', sa.Column('pages', sa.Integer(), nullable=True))",
    "op.execute(sa.text(\"UPDATE books SET pages = 0 WHERE pages IS NULL\"))",
    "with op.batch_alter_table('books', schema=None) as batch_op:",
    "    batch_op.alter_column('pages', existing_type=sa.Integer(), nullable=False)",
)
DROP_PAGES = (
    "with op.batch_alter_table('books', schema=None) as batch_op:",
    "    batch_op.drop_column('pages')",
)
RENAME_AUTHOR = (
    "with op.batch_alter_table('books', schema=None) as batch_op:",
    "    batch_op.alter_column('author', new_column_name='writer')",
)
RENAME_WRITER = (
    "with op.batch_alter_table('books', schema=None) as batch_op:",
    "    batch_op.alter_column('writer', new_column_name='author')",
)

LIBRARY = Lesson(
    name="Library migrations lesson",
    steps={1: "Create the books table", 2: "Add pages, NOT NULL, with a backfill", 3: "Rename author to writer"},
    checkpoints=CHECKPOINTS,
    revisions=(
        Revision(
            BY_ID["create_books"],
            CreateTable("books", (
                ("id", Spec("integer", None, True)), ("name", Spec("string", False)), ("author", Spec("string", None)),
            )),
            upgrade=CREATE_BOOKS,
            downgrade=("op.drop_table('books')",),
        ),
        Revision(
            BY_ID["add_pages"],
            AddColumn("books", "pages", Spec("integer", False)),
            upgrade=ADD_PAGES,
            downgrade=DROP_PAGES,
            keeps_rows=True,
        ),
        Revision(
            BY_ID["rename_author"],
            RenameColumn("books", "author", "writer"),
            upgrade=RENAME_AUTHOR,
            downgrade=RENAME_WRITER,
            keeps_rows=True,
        ),
    ),
    data_sets=(
        DataSet("books", ("books",), ("writer", "author"),
                ((1, "Dune", "Frank Herbert"), (2, "Emma", "Jane Austen")),
                step=1, model="Book"),
    ),
    end=EndState(
        revision=3,
        step=3,
        tables=(("books", ("id", "name", "writer", "pages")),),
        kept_values=(("books", "writer"),),
        model_code=(
            "class Book(db.Model):",
            "    __tablename__ = \"books\"",
            "",
            "    id = db.Column(db.Integer, primary_key=True)",
            "    name = db.Column(db.String, nullable=False)",
            "    writer = db.Column(db.String)",
            "    pages = db.Column(db.Integer, nullable=False)",
        ),
    ),
    words=LIBRARY_WORDS,
    model_names=("Book",),
    first_migrate='flask db migrate -m "create books"',
)

MODELS = '''\
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

db = SQLAlchemy(metadata=MetaData(naming_convention={"pk": "pk_%(table_name)s"}))


class Book(db.Model):
    __tablename__ = "books"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String, nullable=False)
    writer = db.Column(db.String)
    pages = db.Column(db.Integer, nullable=False)
'''

APP = '''\
from flask import Flask
from flask_migrate import Migrate

from models import db

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///library.db"
migrate = Migrate(app, db)
db.init_app(app)
'''

# The solution's three revisions: (upgrade lines, downgrade lines).
SOLUTION = {
    1: (CREATE_BOOKS, ("op.drop_table('books')",)),
    2: (ADD_PAGES, DROP_PAGES),
    3: (RENAME_AUTHOR, RENAME_WRITER),
}

# Three mistakes, each a change of the solution, and the verdicts they must get.
MISTAKES = {
    "NOT NULL column added without a backfill": {
        "revisions": {2: (("op.add_column('books', sa.Column('pages', sa.Integer(), nullable=False))",), DROP_PAGES)},
        "failing": {"add_pages": "upgrade_fails", "rename_author": "blocked", "downgrades": "blocked",
                    "models_match": "blocked"},
    },
    "rename kept as drop + add": {
        "revisions": {3: (
            ("op.add_column('books', sa.Column('writer', sa.String(), nullable=True))",
             "with op.batch_alter_table('books', schema=None) as batch_op:",
             "    batch_op.drop_column('author')"),
            ("op.add_column('books', sa.Column('author', sa.String(), nullable=True))",
             "with op.batch_alter_table('books', schema=None) as batch_op:",
             "    batch_op.drop_column('writer')"),
        )},
        "failing": {"rename_author": "loses_data", "downgrades": "downgrade_not_reversed"},
    },
    "models.py left with author": {
        "models": MODELS.replace("writer = db.Column", "author = db.Column"),
        "failing": {"models_match": "models_mismatch"},
    },
}
