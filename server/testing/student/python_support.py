"""Which Pythons the lesson supports, said before anything else can fail.

On an older Python, `pipenv install` may finish without error yet leave out
every locked package that needs a newer one (click, psycopg, ...), and the
first command would then die on an ImportError. This module uses only the
standard library and syntax old Pythons read, so it can say what is wrong.
"""
OLDEST = (3, 10)
NEWEST = (3, 15)


def _name(version):
    return "Python {}.{}".format(*version)


def python_problem(version_info):
    """(fatal, message) about this Python, or None when it is supported."""
    version = tuple(version_info[:2])
    running = "Python {}.{}.{}".format(*version_info[:3])
    supported = "{} to {}".format(_name(OLDEST), _name(NEWEST))
    if version < OLDEST:
        return True, (
            "This lesson needs {supported}, and its environment runs {running}.\n"
            "Install a supported Python (see Setup in README.md), then rebuild the environment\n"
            "with it, from the repository root:\n"
            "    pipenv --rm\n"
            "    pipenv install --python 3.13"
        ).format(supported=supported, running=running)
    if version > NEWEST:
        return False, (
            "Note: this lesson is tested on {supported}; this is {running}. If something\n"
            "fails, rebuild the environment with a tested one: pipenv --rm, then\n"
            "pipenv install --python 3.13"
        ).format(supported=supported, running=running)
    return None
