"""The README performed end to end, on SQLite and PostgreSQL.

The walkthrough runs once per backend and session (lesson_builds); the tests
below check the state it left after every step, and use copies of its
snapshots for what changes a database.
"""
import ast
import re
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from click.testing import CliRunner

from testing.commands import WALKTHROUGH_STEPS, tool_commands
from testing.databases.database import normalize_url, throwaway_database
from testing.lesson import readme
from testing.lesson.checkpoints import CHECKPOINTS, LESSON, STEPS
from testing.maintainers import walkthrough
from testing.maintainers.walkthrough import (
    FURTHER_LAST_STEP,
    LAST_STEP,
    REPO_ROOT,
    WalkthroughError,
    flask_environment,
    main,
    run_walkthrough,
)
from testing.tests.lesson_builds import (
    StateMismatch,
    assert_empty,
    assert_state,
    copy_reference,
    database_state,
    reference_solution,
)

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def flask(lesson_copy, *args):
    """A real flask command in a copy, on the copy's own database."""
    env = flask_environment(lesson_copy.database_url)
    return subprocess.run(
        [sys.executable, "-m", "flask"] + list(args),
        cwd=lesson_copy.server, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180,
    )


def revision_chain(server):
    """[(revision, down_revision)] of the revision files, read without running them."""
    chain = []
    for path in (server / "migrations" / "versions").glob("*.py"):
        values = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                if node.targets[0].id in ("revision", "down_revision"):
                    values[node.targets[0].id] = ast.literal_eval(node.value)
        chain.append((values["revision"], values["down_revision"]))
    return chain


# --- the finished lesson ------------------------------------------------------


def test_walkthrough_builds_four_revisions_in_one_chain(request, backend):
    build = reference_solution(request, backend)
    assert build.result.completed_step == 5
    revisions = build.revisions
    assert len(revisions) == 4 and len(set(revisions)) == 4
    expected_chain = list(zip(revisions, [None] + revisions[:-1]))
    assert sorted(revision_chain(build.checkout / "server"), key=lambda link: revisions.index(link[0])) == expected_chain
    # The README's example ids were each mapped to one real id, in order.
    assert list(build.result.readme_ids.values()) == revisions


@pytest.mark.parametrize("step", sorted(STEPS))
def test_database_after_step(request, backend, step):
    """Exactly the expected tables, columns, nullability, alembic_version and rows."""
    build = reference_solution(request, backend)
    assert_state(build.states[step], step, build.revisions)


def test_rows_survive_the_renames_and_the_downgrade(request, backend):
    build = reference_solution(request, backend)
    departments = {3: "departments", 4: "departments", 5: "departments"}
    for step, table in departments.items():
        rows = build.states[step].rows
        assert [row["name"] for row in rows["employees"]] == ["Kai Uri", "Alena Lee"], step
        assert [row["name"] for row in rows[table]] == ["Payroll", "Human Resources"], step
    assert [row["location"] for row in build.states[4].rows["departments"]] == [
        "Building A, 4th Floor", "Building C, 1st Floor"]


def test_downgrade_to_base_leaves_only_alembic_version(request, backend, tmp_path):
    lesson = copy_reference(request, reference_solution(request, backend), tmp_path / "copy")
    assert_state(database_state(lesson.database_url), 5, lesson.result.revisions)  # the copy starts at step 5
    finished = flask(lesson, "db", "downgrade", "base")
    assert finished.returncode == 0, finished.stdout
    assert "Running downgrade" in finished.stdout
    assert_empty(database_state(lesson.database_url))


def test_copies_are_independent(request, backend, tmp_path):
    build = reference_solution(request, backend)
    lesson = copy_reference(request, build, tmp_path / "copy", step=2)
    assert flask(lesson, "db", "downgrade", "base").returncode == 0
    assert_empty(database_state(lesson.database_url))
    # Neither the snapshot nor the finished reference was touched.
    assert_state(database_state(copy_reference(request, build, tmp_path / "again", step=2).database_url), 2,
                 build.revisions)
    assert_state(database_state(build.database_url), 5, build.revisions)


# --- a wrong README is caught ------------------------------------------------


def readme_blocks(step, kind, argument=None):
    return [b for b in readme.parse_readme(README) if b.step == step and b.kind == kind
            and (argument is None or b.argument == argument)]


def readme_with_blocks(replacements, readme_text=README):
    """The README with marked blocks' contents replaced ({block: new content})."""
    lines = readme_text.splitlines(keepends=True)
    for block, new_text in sorted(replacements.items(), key=lambda item: -item[0].line):
        start = block.line + 1  # the opening fence follows the marker line
        end = start + len(block.text.splitlines())
        assert lines[block.line].startswith("```") and lines[end].startswith("```")
        lines[start:end] = [new_text]
    return "".join(lines)


def wrong_step_3_edit():
    """Step 3's edit replaced by what autogenerate wrote (create departments +
    drop department): the mistake the lesson warns about."""
    [generated] = readme_blocks(3, "generated", "rename department")
    [edited] = readme_blocks(3, "migration", "rename department")
    assert "op.rename_table" in edited.text
    assert "op.create_table('departments'" in generated.text and "op.drop_table('department')" in generated.text
    return {edited: generated.text}


def without_step_3_review():
    """Step 3's `flask lesson review` replaced by a harmless command, so the
    other checks must catch the wrong edit on their own."""
    [review] = [b for b in readme_blocks(3, "run") if "$ flask lesson review" in b.text]
    return {review: "$ flask db current\n"}


def continue_from_step_2(request, backend, tmp_path, readme_text, **options):
    lesson = copy_reference(request, reference_solution(request, backend), tmp_path / "copy", step=2)
    return run_walkthrough(
        lesson.checkout, resume=lesson.result, stop_after=3, readme_text=readme_text,
        database_url=lesson.database_url, report=lambda line: None, **options,
    )


def test_wrong_step_3_edit_is_stopped_by_the_review(request, backend, tmp_path):
    with pytest.raises(WalkthroughError) as failure:
        continue_from_step_2(request, backend, tmp_path, readme_with_blocks(wrong_step_3_edit()))
    message = str(failure.value)
    assert "(step 3, `run` block): `flask lesson review` failed with exit code 1" in message, message
    assert "drops table department" in message, message


def test_wrong_step_3_edit_fails_the_readme_output_check(request, tmp_path):
    # Comparing output is the same on both backends; once on SQLite is enough.
    mutant = readme_with_blocks({**wrong_step_3_edit(), **without_step_3_review()})
    with pytest.raises(WalkthroughError) as failure:
        continue_from_step_2(request, "sqlite", tmp_path, mutant)
    message = str(failure.value)
    assert "step 3, `shell` block" in message and "printed something else than the README shows" in message
    assert "+[]" in message  # the real Department.query.all()


def test_wrong_step_3_edit_fails_the_state_check(request, backend, tmp_path):
    mutant = readme_with_blocks({**wrong_step_3_edit(), **without_step_3_review()})
    states = {}

    def verify(step, result):
        states[step] = database_state(result.database_url)
        assert_state(states[step], step, result.revisions)

    with pytest.raises(StateMismatch) as failure:
        continue_from_step_2(request, backend, tmp_path, mutant, check_outputs=False, after_step=verify)
    # The schema looks right; only the rows are gone.
    message = str(failure.value)
    assert message.startswith("after step 3: departments: found 0 rows []"), message
    assert message.endswith("(rows lost)") and ";" not in message, message
    assert states[3].rows["departments"] == [] and set(states[3].tables) == {"alembic_version", "employees", "departments"}


def test_readme_output_that_differs_from_the_real_one_fails(request, tmp_path):
    wrong = README.replace("INFO  [alembic.autogenerate.compare] Detected removed table 'department'\n",
                           "INFO  [alembic.autogenerate.compare] Detected renamed table 'department'\n", 1)
    assert wrong != README
    with pytest.raises(WalkthroughError, match=r"step 3, `run` block\): `flask db migrate -m \"rename department\"` did not print"):
        continue_from_step_2(request, "sqlite", tmp_path, wrong)


def test_readme_generated_script_that_differs_from_the_real_one_fails(request, tmp_path):
    [generated] = readme_blocks(3, "generated")
    wrong = readme_with_blocks({generated: generated.text.replace("op.drop_table('department')",
                                                                   "op.drop_table('employees')", 1)})
    assert wrong != README
    with pytest.raises(WalkthroughError, match=r"`upgrade` in \w+_rename_department.py is not what the README shows"):
        continue_from_step_2(request, "sqlite", tmp_path, wrong)


# --- the README's structure -------------------------------------------------


def test_readme_step_headings_are_the_lesson_steps():
    assert readme.step_titles(README) == {**STEPS, **LESSON.further.steps}


def test_readme_marks_the_blocks_of_every_step():
    kinds = {step: [block.kind for block in readme.parse_readme(README) if block.step == step] for step in STEPS}
    # Step 1 first proves the starter's models.py is the one the README shows.
    assert kinds[1][0] == "expect models.py" and "run" in kinds[1] and "shell" in kinds[1]
    # Steps 3 and 4: generate, compare with what is shown, edit, then upgrade.
    for step in (3, 4):
        generated, edited = kinds[step].index("generated"), kinds[step].index("migration")
        assert generated < edited and "run" in kinds[step][edited:], kinds[step]
    # Step 5 ends by proving the finished models.py is the one the README shows.
    assert kinds[5][-1] == "expect models.py"


def test_readme_quick_start_keeps_the_students_command_apart_from_the_maintainers():
    top = README[:README.index("\n## ")]
    students, maintainers = re.findall(r"```console\n(.*?)```", top, re.S)
    assert students.splitlines() == ["pipenv install && pipenv run status"]
    assert maintainers.splitlines() == ["pipenv install --dev && pipenv run selftest"]
    assert top.index("for students") < top.index(students) < top.index("Maintainers only") < top.index(maintainers)


def test_readme_checkpoint_table_lists_every_checkpoint():
    rows = re.findall(r"^\| `(\w+)` \| (\d) \| (.+?) \| (\d+) \|$", README, re.M)
    assert [(id_, int(step), title, int(points)) for id_, step, title, points in rows] == [
        (checkpoint.id, checkpoint.step, checkpoint.title, checkpoint.points) for checkpoint in CHECKPOINTS
    ]


def test_readme_not_null_example_backfills_existing_rows(backend):
    """The troubleshooting example (add nullable, backfill with sa.text and
    bound parameters, then NOT NULL) really runs, on a table that has rows."""
    example = re.search(r"```python\n(def upgrade\(\):\n    # 1\. Add the column.*?)```", README, re.S).group(1)
    assert "sa.text(" in example and ":email" in example and "%s" not in example and 'f"' not in example
    functions = {}
    exec(compile(example, "README troubleshooting example", "exec"), functions)
    with throwaway_database(backend) as url:
        engine = sa.create_engine(normalize_url(url))
        try:
            with engine.begin() as connection:
                connection.execute(sa.text("CREATE TABLE employees (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR NOT NULL)"))
                connection.execute(sa.text("INSERT INTO employees (id, name) VALUES (1, 'Kai Uri'), (2, 'Alena Lee')"))
                functions["op"] = Operations(MigrationContext.configure(connection))
                functions["sa"] = sa
                functions["upgrade"]()
            columns = {column["name"]: column["nullable"] for column in sa.inspect(engine).get_columns("employees")}
            assert columns == {"id": False, "name": False, "email": False}
            with engine.connect() as connection:
                emails = connection.execute(sa.text("SELECT email FROM employees ORDER BY id")).scalars().all()
            assert emails == ["kai.uri@example.com", "alena.lee@example.com"]
            with engine.begin() as connection:
                functions["op"] = Operations(MigrationContext.configure(connection))
                functions["downgrade"]()
            assert [column["name"] for column in sa.inspect(engine).get_columns("employees")] == ["id", "name"]
        finally:
            engine.dispose()


# --- the command line --------------------------------------------------------


def test_main_runs_the_first_step_into_a_kept_folder(tmp_path, capsys):
    dest = tmp_path / "scratch"
    assert main(stop_after=1, dest=dest) == 0
    printed = capsys.readouterr().out
    assert "Step 1: Initial migration: the employees table" in printed and "Done: steps 1-1 on sqlite" in printed
    assert len(list((dest / "server" / "migrations" / "versions").glob("*.py"))) == 1
    assert (dest / "server" / "instance" / "app.db").is_file()


def test_main_reports_a_failure_without_a_traceback(tmp_path, capsys):
    dest = tmp_path / "scratch"
    dest.mkdir()
    (dest / "something").write_text("")
    assert main(dest=dest) == 1
    assert "is not empty" in capsys.readouterr().err


@pytest.mark.parametrize("args, values", (
    ([], ("sqlite", LAST_STEP, None, False)),
    (["--backend", "postgresql", "--stop-after", "3", "--dest", "copy", "--keep"], ("postgresql", 3, "copy", True)),
))
def test_the_command_passes_its_options_to_main(monkeypatch, args, values):
    calls = []
    monkeypatch.setattr(walkthrough, "main", lambda *given: calls.append(given) or 7)
    result = CliRunner().invoke(tool_commands, ["walkthrough", *args])
    assert result.exit_code == 7, result.output  # main's exit code
    [(backend, stop_after, dest, keep)] = calls
    assert (backend, stop_after, None if dest is None else str(dest), keep) == values


@pytest.mark.parametrize("args", (["--stop-after", "0"], ["--stop-after", str(FURTHER_LAST_STEP + 1)],
                                  ["--backend", "mysql"], ["extra"]))
def test_the_command_refuses_other_options(monkeypatch, args):
    monkeypatch.setattr(walkthrough, "main", lambda *given: pytest.fail("main ran"))
    result = CliRunner().invoke(tool_commands, ["walkthrough", *args])
    assert result.exit_code == 2, result.output
    assert list(WALKTHROUGH_STEPS) == list(range(1, FURTHER_LAST_STEP + 1))


@pytest.mark.parametrize("flag", ("--help", "-h"))
def test_the_command_help_shows_the_options(flag):
    result = CliRunner().invoke(tool_commands, ["walkthrough", flag], prog_name="pipenv run")
    assert result.exit_code == 0
    assert result.output.startswith("Usage: pipenv run walkthrough [OPTIONS]")
    for option in ("--backend [sqlite|postgresql]", "--stop-after N", "--dest DEST", "--keep"):
        assert option in result.output, result.output
