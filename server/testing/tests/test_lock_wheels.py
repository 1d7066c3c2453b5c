"""Pipfile.lock installs from wheels on every Python and platform a student may have.

For each supported Python (3.10 to 3.15) and each of Linux x86_64 and aarch64,
macOS arm64 and x86_64 and Windows amd64, every locked package that
`pipenv install --dev` would install there must have a wheel of the locked
version in the real registry, one whose hash is in the lock. Without a wheel,
pip builds the package from source on the student's machine (which fails
without a C compiler) or finds nothing to install at all; a wheel missing from
the lock's hashes makes `pipenv install --deploy` refuse it.

The registry's file lists are read once per package (the JSON form of the
simple index, PEP 691) and judged with packaging's tags, the rules pip itself
uses; one pair is also resolved by pip (a dry run) to show both agree. Where
the registry cannot be reached the test is skipped, and fails in CI.
"""
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.specifiers import SpecifierSet
from packaging.tags import compatible_tags, cpython_tags, mac_platforms
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parents[3]
PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14", "3.15")

# The oldest systems supported: glibc 2.28 (RHEL 8, Debian 10; Ubuntu 20.04
# has 2.31), macOS 11 on both kinds of Mac, 64-bit Windows. The maintainers'
# tools (the lock's develop section) may ask for macOS 13.
GLIBC_MINORS = range(28, 16, -1)
LINUX = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"}
MACOS = {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix"}
WINDOWS = {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"}
PLATFORMS = {
    "linux-x86_64": {
        "tags": [f"manylinux_2_{minor}_x86_64" for minor in GLIBC_MINORS]
        + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"],
        "markers": {**LINUX, "platform_machine": "x86_64"},
    },
    "linux-aarch64": {
        "tags": [f"manylinux_2_{minor}_aarch64" for minor in GLIBC_MINORS] + ["manylinux2014_aarch64"],
        "markers": {**LINUX, "platform_machine": "aarch64"},
    },
    "macos-arm64": {
        "tags": list(mac_platforms((11, 0), "arm64")),
        "develop_tags": list(mac_platforms((13, 0), "arm64")),
        "markers": {**MACOS, "platform_machine": "arm64"},
    },
    "macos-x86_64": {
        "tags": list(mac_platforms((11, 0), "x86_64")),
        "develop_tags": list(mac_platforms((13, 0), "x86_64")),
        "markers": {**MACOS, "platform_machine": "x86_64"},
    },
    "windows-amd64": {
        "tags": ["win_amd64"],
        "markers": {**WINDOWS, "platform_machine": "AMD64"},
    },
}
PAIRS = [(python, platform) for python in PYTHONS for platform in PLATFORMS]


def marker_environment(python, platform):
    return {
        "python_version": python, "python_full_version": f"{python}.0",
        "implementation_name": "cpython", "platform_python_implementation": "CPython",
        "implementation_version": f"{python}.0", **PLATFORMS[platform]["markers"],
    }


def locked_packages():
    """{name: (version, hashes, markers, develop only)} of everything
    `pipenv install --dev` installs from the registry."""
    lock = json.loads((REPO_ROOT / "Pipfile.lock").read_text(encoding="utf-8"))
    packages = {}
    for section in ("develop", "default"):  # default last: it decides "develop only"
        for name, entry in lock[section].items():
            if "path" in entry:
                continue  # the grader itself (server/testing/), installed from this checkout
            packages[canonicalize_name(name)] = (
                entry["version"].removeprefix("=="), set(entry.get("hashes", [])), entry.get("markers"),
                section == "develop",
            )
    return packages


def installed_on(python, platform, packages):
    """The locked packages whose markers hold for this Python and platform."""
    environment = marker_environment(python, platform)
    return {name: entry for name, entry in packages.items()
            if not entry[2] or Marker(entry[2]).evaluate(environment)}


def index_url():
    """The Pipfile's package index (the lock records it)."""
    lock = json.loads((REPO_ROOT / "Pipfile.lock").read_text(encoding="utf-8"))
    return lock["_meta"]["sources"][0]["url"].rstrip("/")


def registry_files(name):
    """The files the index lists for a project (PEP 691 JSON)."""
    request = urllib.request.Request(f"{index_url()}/{name}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["files"]


@lru_cache(maxsize=None)
def tag_ranks(python, platform_tags):
    """{tag: rank} of the wheel tags a CPython of this version accepts, 0 the best (as pip ranks them)."""
    version = tuple(int(part) for part in python.split("."))
    interpreter = "cp" + python.replace(".", "")
    tags = list(cpython_tags(version, [interpreter], platform_tags)) + list(
        compatible_tags(version, interpreter, platform_tags))
    return {tag: rank for rank, tag in reversed(list(enumerate(tags)))}


def best_wheel(files, version, python, platform_tags):
    """The registry file pip would install, or None when no wheel fits."""
    ranks = tag_ranks(python, tuple(platform_tags))
    candidates = []
    for file in files:
        if not file["filename"].endswith(".whl") or file.get("yanked"):
            continue
        _, file_version, _, tags = parse_wheel_filename(file["filename"])
        requires = file.get("requires-python")
        if file_version != Version(version) or (requires and f"{python}.0" not in SpecifierSet(requires)):
            continue
        fitting = [ranks[tag] for tag in tags if tag in ranks]
        if fitting:
            candidates.append((min(fitting), file["filename"], file))
    return min(candidates, key=lambda candidate: candidate[:2])[2] if candidates else None


@pytest.fixture(scope="module")
def registry():
    """{package: its files in the registry}, read concurrently, once."""
    names = sorted(locked_packages())
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            return dict(zip(names, pool.map(registry_files, names)))
    except (urllib.error.URLError, OSError, ValueError) as error:
        message = f"the package index {index_url()} cannot be read ({type(error).__name__}: {error})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}: the lock's wheels cannot be checked, and CI requires it")
        pytest.skip(f"Lock not checked: {message}")


def wheel_problems(python, platform, registry):
    """What keeps `pipenv install --dev --deploy` from installing wheels only."""
    problems = []
    for name, (version, hashes, _, develop_only) in sorted(installed_on(python, platform, locked_packages()).items()):
        if not hashes or not version[:1].isdigit():
            problems.append(f"{name}: locked as {version!r} without hashes; pin it exactly in the Pipfile")
            continue
        tags = PLATFORMS[platform]["develop_tags" if develop_only and "develop_tags" in PLATFORMS[platform] else "tags"]
        wheel = best_wheel(registry[name], version, python, tags)
        if wheel is None:
            sources = [file["filename"] for file in registry[name] if f"-{version}.tar.gz" in file["filename"]]
            fallback = f"pip would build {sources[0]} from source" if sources else "nothing to install at all"
            problems.append(f"{name} {version}: no wheel for it ({fallback})")
        elif "sha256:" + wheel["hashes"]["sha256"] not in hashes:
            problems.append(f"{name} {version}: {wheel['filename']} is not among the lock's hashes "
                            "(re-lock with .ci/lock)")
    return problems


def test_thirty_pairs_are_checked():
    assert len(PAIRS) == 30
    assert {platform for _, platform in PAIRS} == set(PLATFORMS)


def test_the_squawk_binary_is_among_the_checked_packages():
    """squawk-cli is a prebuilt binary in a wheel per platform, with no pure-Python
    wheel to fall back on: the pairs below check it like every locked package, and it
    is installed by a plain `pipenv install` (the review and the grader's note use it)."""
    version, hashes, _, develop_only = locked_packages()["squawk-cli"]
    assert version.startswith("2.70.") and hashes and not develop_only


@pytest.mark.parametrize("python, platform", PAIRS, ids=[f"{python}-{platform}" for python, platform in PAIRS])
def test_every_locked_package_has_a_wheel(registry, python, platform):
    problems = wheel_problems(python, platform, registry)
    assert not problems, f"Python {python}, {platform}:\n" + "\n".join(problems)


def pip_environment():
    """This environment without pip's configuration files or PIP_* settings
    (a local mirror or wheel folder must not stand in for the registry)."""
    keep = {"PIP_CERT", "PIP_CLIENT_CERT", "PIP_PROXY", "PIP_TRUSTED_HOST"}
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIP_") or name in keep}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def test_pip_picks_the_same_wheels(registry, tmp_path):
    """pip's own resolution (a dry run, wheels only) for the newest Python on
    Windows, where wheels were missing before, chooses the files judged above."""
    python, platform = "3.15", "windows-amd64"
    packages = {name: entry for name, entry in installed_on(python, platform, locked_packages()).items()
                if not entry[3]}
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("".join(f"{name}=={entry[0]}\n" for name, entry in packages.items()), encoding="utf-8")
    report = tmp_path / "report.json"
    platform_options = [option for tag in PLATFORMS[platform]["tags"] for option in ("--platform", tag)]
    finished = subprocess.run([
        sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps",
        "--only-binary=:all:", "--python-version", python, "--implementation", "cp", "--abi", "cp315",
        *platform_options, "--target", str(tmp_path / "target"), "--index-url", index_url(),
        "--disable-pip-version-check", "--quiet", "--report", str(report), "-r", str(requirements),
    ], env=pip_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout
    chosen = {canonicalize_name(item["metadata"]["name"]): item["download_info"]["url"].rsplit("/", 1)[-1]
              for item in json.loads(report.read_text(encoding="utf-8"))["install"]}
    judged = {name: best_wheel(registry[name], entry[0], python, PLATFORMS[platform]["tags"])["filename"]
              for name, entry in packages.items()}
    assert chosen == judged


def test_a_missing_wheel_is_reported():
    """The judgement itself: a source archive only, a wheel for another
    Python, or one for another platform all count as no wheel."""
    files = [
        {"filename": "greenlet-3.2.5.tar.gz", "hashes": {"sha256": "a"}},
        {"filename": "greenlet-3.2.5-cp313-cp313-win_amd64.whl", "hashes": {"sha256": "b"}},
        {"filename": "greenlet-3.2.5-cp315-cp315-manylinux_2_28_x86_64.whl", "hashes": {"sha256": "c"}},
        {"filename": "greenlet-3.2.4-cp315-cp315-win_amd64.whl", "hashes": {"sha256": "d"}},
    ]
    windows = PLATFORMS["windows-amd64"]["tags"]
    assert best_wheel(files, "3.2.5", "3.15", windows) is None
    assert best_wheel(files, "3.2.5", "3.13", windows)["hashes"]["sha256"] == "b"
    assert best_wheel(files, "3.2.5", "3.15", PLATFORMS["linux-x86_64"]["tags"])["hashes"]["sha256"] == "c"
    pure = [{"filename": "flask-3.1.3-py3-none-any.whl", "requires-python": ">=3.9", "hashes": {"sha256": "e"}}]
    assert best_wheel(pure, "3.1.3", "3.15", windows)["hashes"]["sha256"] == "e"
    assert best_wheel([{**pure[0], "requires-python": ">=3.11"}], "3.1.3", "3.10", windows) is None


def test_markers_pick_packages_per_platform():
    """Marker evaluation decides which packages are checked where."""
    packages = {"colorama": ("0.4.6", set(), "sys_platform == 'win32'", False),
                "tomli": ("2.5.0", set(), "python_version < '3.11'", False),
                "flask": ("3.1.3", set(), None, False)}
    assert set(installed_on("3.10", "windows-amd64", packages)) == {"colorama", "tomli", "flask"}
    assert set(installed_on("3.15", "linux-aarch64", packages)) == {"flask"}
