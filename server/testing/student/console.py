"""Output that works on every console.

A Windows console or a redirected output may encode with a code page such as
cp1252 or cp437, which has no place for most of Unicode: a migration message
in Chinese or a folder name in Polish would stop `print` with a
UnicodeEncodeError. Such characters are printed as escapes (\\u90e8) instead.
"""
import sys


def tolerate_unencodable_output():
    """Let sys.stdout and sys.stderr escape what their encoding cannot show."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
