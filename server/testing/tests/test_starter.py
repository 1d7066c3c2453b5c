"""The starter a student forks: what it holds, and that it works as the README says."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from dotenv import dotenv_values

from testing.maintainers.walkthrough import (
    REPO_ROOT, WalkthroughError, copy_starter, flask_environment, lesson_in_progress, published_models,
)

SERVER = REPO_ROOT / "server"


def tracked_files():
    """Paths a fork gets: Git's tracked files, or the folder when it is no Git checkout."""
    if shutil.which("git") and (REPO_ROOT / ".git").exists():
        listed = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files"], stdout=subprocess.PIPE, text=True, check=True)
        return listed.stdout.splitlines()
    return [str(path.relative_to(REPO_ROOT)) for path in REPO_ROOT.rglob("*") if path.is_file()]


def student_env():
    """The environment of a fresh terminal: none of the variables the lesson reads."""
    return flask_environment()


@pytest.fixture(scope="module")
def starter(tmp_path_factory):
    return copy_starter(tmp_path_factory.mktemp("starter") / "checkout")


# What the starter's app reports about itself, from a fresh interpreter in server/.
APP_REPORT = """
import json
from app import app
from models import db
with app.app_context():
    tables = {
        table.name: [[c.name, type(c.type).__name__, c.nullable, c.primary_key] for c in table.columns]
        for table in db.metadata.sorted_tables
    }
    print(json.dumps({
        "models": sorted(mapper.class_.__name__ for mapper in db.Model.registry.mappers),
        "tables": tables,
        "database": db.engine.url.database,
        "instance_path": app.instance_path,
        "commands": sorted(app.cli.commands),
    }))
"""


@pytest.fixture(scope="module")
def app_report(starter):
    finished = subprocess.run([sys.executable, "-c", APP_REPORT], cwd=starter / "server", env=student_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout)


def test_the_starter_has_no_migrations_database_or_settings():
    files = tracked_files()
    models = (SERVER / "models.py").read_text(encoding="utf-8")
    if lesson_in_progress(REPO_ROOT) and models != published_models(REPO_ROOT):
        pytest.skip("this checkout is a lesson in progress: its own files are not the published starter's")
    assert not [name for name in files if name.startswith(("server/migrations/", "server/instance/"))]
    assert not [name for name in files if name.endswith((".db", ".sqlite3")) or os.path.basename(name) == ".env"]
    for name in ("server/app.py", "server/models.py", "server/.flaskenv", "server/.env.example",
                 "Pipfile", "Pipfile.lock", "pytest.ini", "README.md", ".gitignore"):
        assert name in files, f"{name} is not in the starter"


def test_models_define_only_employee(app_report):
    assert app_report["models"] == ["Employee"]
    assert app_report["tables"] == {
        "employees": [
            ["id", "Integer", False, True],
            ["name", "String", False, False],
            ["salary", "Integer", True, False],
        ]
    }


def test_app_imports_and_defaults_to_sqlite_in_the_instance_folder(app_report, starter):
    assert app_report["database"] == str((starter / "server" / "instance" / "app.db").resolve())
    assert app_report["instance_path"] == str((starter / "server" / "instance").resolve())
    assert {"db", "lesson"} <= set(app_report["commands"])


def test_flaskenv_sets_the_app_and_the_port():
    assert dotenv_values(SERVER / ".flaskenv") == {"FLASK_APP": "app.py", "FLASK_RUN_PORT": "5555"}


def test_flask_finds_the_app_through_flaskenv_alone(starter):
    finished = subprocess.run([sys.executable, "-m", "flask", "--help"], cwd=starter / "server", env=student_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert finished.returncode == 0, finished.stdout
    commands = finished.stdout.split("Commands:", 1)[1].split()
    assert "db" in commands and "lesson" in commands and "shell" in commands


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")
def test_gitignore_keeps_local_settings_and_databases_out(tmp_path):
    # A throw-away repository with only our .gitignore: asks Git itself.
    shutil.copy(REPO_ROOT / ".gitignore", tmp_path / ".gitignore")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    ignored = ["server/.env", "server/instance/app.db", "server/instance/", "server/app.db", "app.db",
               "server/testing/__pycache__/x.pyc"]
    kept = ["server/.env.example", "server/.flaskenv", "server/models.py", "server/migrations/env.py",
            "server/migrations/versions/65db64b00caf_initial_migration.py"]
    for path in ignored + kept:
        check = subprocess.run(["git", "-C", str(tmp_path), "check-ignore", "-q", "--no-index", path])
        assert check.returncode == (0 if path in ignored else 1), f"{path}: ignored={check.returncode == 0}"


def test_copy_starter_leaves_out_local_state(tmp_path):
    source = tmp_path / "source"
    for name in ("README.md", "server/app.py", "server/.flaskenv", "server/.env", "server/.env.example",
                 "server/instance/app.db", "server/migrations/env.py", "server/__pycache__/app.cpython-311.pyc",
                 "server/testing/__pycache__/x.pyc", "server/testing/fixtures/migrations/keep.py", ".git/HEAD"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("x")
    dest = copy_starter(tmp_path / "dest", source=source)
    copied = sorted(str(path.relative_to(dest)) for path in dest.rglob("*") if path.is_file())
    assert copied == ["README.md", "server/.env.example", "server/.flaskenv", "server/app.py",
                      "server/testing/fixtures/migrations/keep.py"]
    with pytest.raises(WalkthroughError, match="is not empty"):
        copy_starter(dest, source=source)


def test_copy_of_this_repository_is_a_clean_starter(tmp_path):
    starter = copy_starter(tmp_path / "checkout")
    server = starter / "server"
    assert (server / "app.py").is_file() and (server / "models.py").is_file() and (starter / "README.md").is_file()
    assert not (server / "migrations").exists() and not (server / "instance").exists()
    assert not (server / ".env").exists()
    assert not list(starter.rglob("__pycache__"))


def test_copy_starter_of_a_lesson_in_progress_takes_the_published_models(tmp_path):
    # A student's checkout after step 2: its models.py has Department, it has migrations.
    source = tmp_path / "student"
    shutil.copytree(REPO_ROOT / "server", source / "server", ignore=shutil.ignore_patterns("__pycache__", "instance", "migrations"))
    shutil.copy(REPO_ROOT / "README.md", source / "README.md")
    (source / "server" / "migrations" / "versions").mkdir(parents=True)
    models = source / "server" / "models.py"
    models.write_text(models.read_text(encoding="utf-8") + "\n\nclass Department(db.Model):\n    pass\n", encoding="utf-8")
    dest = copy_starter(tmp_path / "starter", source=source)
    assert (dest / "server" / "models.py").read_text(encoding="utf-8") == published_models(REPO_ROOT)
    assert "class Department" not in published_models(REPO_ROOT)
    assert not (dest / "server" / "migrations").exists()
