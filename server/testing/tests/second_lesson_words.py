"""What the second lesson (second_lesson.py) says of itself, declared apart from
its schema as words.py does for this repository's lesson."""
from testing.lesson.definition import LessonWords, RevisionWords

LIBRARY_WORDS = LessonWords(
    revisions={
        "create_books": RevisionWords(
            short="creates `books`",
            expected="creates table `books`: id (INTEGER, primary key), name (VARCHAR, NOT NULL), author (VARCHAR)",
            how="In server/:\n    flask db migrate -m \"create books\"\n    flask db upgrade head",
        ),
        "add_pages": RevisionWords(
            short="adds `pages` to `books`",
            expected="adds column `pages` (INTEGER, NOT NULL) to `books`, filling it in for the rows already there",
            how="Add `pages = db.Column(db.Integer, nullable=False)` to Book, run `flask db migrate -m \"add pages\"`, "
                "make the new script add it nullable, fill it in and then make it NOT NULL, then "
                "`flask db upgrade head`.",
        ),
        "rename_author": RevisionWords(
            short="renames `author` to `writer`",
            expected="renames column `author` of `books` to `writer`, keeping every value",
            how="Rename `author` to `writer` in models.py, run `flask db migrate -m \"rename author\"`, change the "
                "new script to a column rename (and back in downgrade()), then `flask db upgrade head`.",
        ),
    },
    extra_revision_note="each step makes one revision",
    model_expected="models.py describes revision 3, the head: Book with `writer` and `pages`.",
    model_fix="Change {models} (not the migrations); {intro}\n\n{model}",
    model_intro="the Book model should read:",
    starter_models="the starter (no models)",
)
