from flask import Flask
from flask_migrate import Migrate

from models import db
from testing.student.app_support import database_url, lesson_commands, lesson_page, review_new_migration

app = Flask(__name__)
# DATABASE_URL (from the environment or server/.env) picks the database;
# without it the app uses SQLite in server/instance/app.db.
app.config["SQLALCHEMY_DATABASE_URI"] = database_url()

# Every `flask db migrate` also gets a review that warns about lost data.
migrate = Migrate(app, db, process_revision_directives=review_new_migration)
db.init_app(app)

# `flask lesson status` and `flask lesson review`
app.cli.add_command(lesson_commands)

# `flask run`: your database and migrations at http://localhost:5555
app.register_blueprint(lesson_page)
