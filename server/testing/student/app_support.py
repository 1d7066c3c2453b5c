"""Everything app.py needs from the lesson's tools, in one import."""
from pathlib import Path

from dotenv import load_dotenv

from ..databases import database
from .cli import lesson_commands
from .page import lesson_page
from .review import review_new_migration

SERVER_DIR = Path(__file__).resolve().parents[2]

__all__ = ["database_url", "lesson_commands", "lesson_page", "review_new_migration"]


def database_url():
    """DATABASE_URL from the environment or server/.env, else the SQLite default."""
    load_dotenv(SERVER_DIR / ".env")  # never overrides variables already set
    return database.database_url()
