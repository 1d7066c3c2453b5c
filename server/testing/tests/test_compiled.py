"""The grader's modules are compiled once, into the user's cache folder (compiled.py),
never into the checkout: a changed source is compiled again, a damaged entry is
ignored, and a cache that cannot be written only means compiling each time."""
import importlib
import sys

import pytest

from testing import compiled


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package `cachedpkg` of its own, loaded through the cache in tmp_path/cache."""
    root = tmp_path / "src" / "cachedpkg"
    root.mkdir(parents=True)
    (root / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(root.parent))
    monkeypatch.setattr(compiled._CachedSourceLoader, "folder", tmp_path / "cache")
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    compiled.keep_compiled("cachedpkg")
    yield root
    for name in [name for name in sys.modules if name.split(".")[0] == "cachedpkg"]:
        del sys.modules[name]


def load(name):
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def test_a_module_is_compiled_once_into_the_cache_and_read_from_there(package, tmp_path):
    (package / "answer.py").write_text("VALUE = 41\n", encoding="utf-8")
    assert load("cachedpkg.answer").VALUE == 41
    [kept] = (tmp_path / "cache").iterdir()
    assert not list(package.rglob("__pycache__"))  # nothing beside the source
    data, stamp = kept.read_bytes(), 4 + 8 + 8  # Python's magic number, the source's time and size
    kept.write_bytes(data[:stamp] + data[stamp:].replace(b"\x29\x00\x00\x00", b"\x2a\x00\x00\x00"))  # 41 -> 42
    assert load("cachedpkg.answer").VALUE == 42  # what the cache holds is what runs


def test_a_changed_source_is_compiled_again(package):
    (package / "answer.py").write_text("VALUE = 41\n", encoding="utf-8")
    assert load("cachedpkg.answer").VALUE == 41
    (package / "answer.py").write_text("VALUE = 4200\n", encoding="utf-8")
    assert load("cachedpkg.answer").VALUE == 4200


def test_a_damaged_entry_is_compiled_again(package, tmp_path):
    (package / "answer.py").write_text("VALUE = 41\n", encoding="utf-8")
    load("cachedpkg.answer")
    [kept] = (tmp_path / "cache").iterdir()
    kept.write_bytes(kept.read_bytes()[:-7])
    assert load("cachedpkg.answer").VALUE == 41


def test_a_cache_that_cannot_be_written_only_means_compiling(package, tmp_path, monkeypatch):
    (tmp_path / "not-a-folder").write_text("", encoding="utf-8")
    monkeypatch.setattr(compiled._CachedSourceLoader, "folder", tmp_path / "not-a-folder" / "cache")
    (package / "answer.py").write_text("VALUE = 41\n", encoding="utf-8")
    assert load("cachedpkg.answer").VALUE == 41


def test_other_packages_are_left_to_python(package):
    assert compiled._Finder("cachedpkg").find_spec("json") is None
