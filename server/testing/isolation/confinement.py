"""What the worker process may reach, enforced by the system before a student's code runs.

    confine(Reach(...)) -> ["files", "network", "processes"]   # what holds now
    available() -> the same list, for this system, without confining anything
    summary(kinds) -> "confined: files, network, processes" (one line for a grade)

Linux: Landlock, which lets an unprivileged process confine itself and every
process it starts (kernel 5.13+ for files, 6.7+ for TCP, 6.12+ for signals).
The worker writes only inside its private folder, reads only Python, the
installed packages, the grader's engine and that folder, connects and binds
no TCP port except the replay database's gate, and cannot signal processes
outside its own domain. A small seccomp filter allows it TCP sockets only
(Landlock does not cover UDP or local sockets, and a PostgreSQL server listens
on one) and no io_uring, and keeps it from giving up being the subreaper of what
it starts, so that the grading process finds and ends every process it left behind.
macOS: sandbox_init() with a profile that denies the network and writing
outside the private folder. Windows: a Job object ends every process of the
worker with it (sandbox.py); files and network stay open there.

The registry's Landlock bindings (landlock, landlockpy, py-landlock) are young
0.x or pre-release projects and none covers the seccomp half; Landlock itself is
three system calls with stable structures, so this module calls them with ctypes.

Blocked attempts raise the ordinary error in the student's code (PermissionError,
OperationalError). An audit hook (Attempts) notes each attempt as it is made, so
that the worker can say what a revision tried ("tried to write /home/x"): the
kernel enforces, the hook only words the message.
"""
import ctypes
import os
import platform
import socket
import sys
from dataclasses import dataclass, field
from typing import Optional, Tuple

KINDS = ("files", "network", "processes")

# --- Linux: Landlock ---------------------------------------------------------------------
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on every architecture
_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_WRITE_TREE = sum(1 << bit for bit in range(4, 13))  # remove, make dir/file/socket/fifo/device/link
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1 << 0, 1 << 1
FILE_ONLY = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV  # rights a file (not a folder) takes
_PR_SET_NO_NEW_PRIVS, _PR_SET_CHILD_SUBREAPER, _PR_SET_SECCOMP = 38, 36, 22
# Files Python or its libraries may read from /etc (never all of it: it holds secrets too).
SYSTEM_FILES = ("/etc/localtime", "/etc/ld.so.cache", "/etc/hosts", "/etc/nsswitch.conf", "/etc/resolv.conf",
                "/etc/gai.conf", "/etc/host.conf", "/etc/mime.types", "/etc/ssl", "/etc/pki")
SYSTEM_FOLDERS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/opt/homebrew")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi():
    """The kernel's Landlock ABI version, 0 where there is none."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(version, 0)


@dataclass
class Reach:
    """What the worker may reach once confined."""

    writable: Tuple[str, ...]  # folders it may change (its private folder)
    readable: Tuple[str, ...]  # folders and files it may read besides (Python, packages, the engine)
    database_port: Optional[int] = None  # the one TCP port it may connect to
    forbidden_pids: Tuple[int, ...] = ()  # processes it must not signal (for the wording only)


def fs_rights(abi):
    rights = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_READ_DIR | FS_WRITE_TREE
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def _landlock(reach, abi):
    """Confine this thread and everything it starts; the kinds that now hold."""
    libc = _libc()
    handled = fs_rights(abi)
    attr = _RulesetAttr(handled, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
                        SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        read = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
        for paths, rights in ((reach.readable, read), (reach.writable, handled), (("/dev/null",), FS_READ_FILE
                              | FS_WRITE_FILE), (("/dev/urandom", "/dev/random"), FS_READ_FILE)):
            for path in paths:
                _allow_path(libc, ruleset, path, rights & handled)
        if abi >= 4 and reach.database_port:
            rule = _NetPortAttr(NET_CONNECT_TCP, reach.database_port)
            if libc.syscall(_ADD_RULE, ruleset, _RULE_NET_PORT, ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                raise OSError(ctypes.get_errno(), "landlock_add_rule (port)")
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 or libc.syscall(_RESTRICT_SELF, ruleset, 0) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return ["files"] + (["network"] if abi >= 4 else [])


def _allow_path(libc, ruleset, path, rights):
    try:
        descriptor = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # not on this system
    try:
        if not os.path.isdir(path):
            rights &= FILE_ONLY
        rule = _PathBeneathAttr(rights, descriptor)
        if libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule ({path})")
    finally:
        os.close(descriptor)


# --- Linux: seccomp, for what Landlock leaves open --------------------------------------
# (audit architecture, prctl, socket, io_uring_setup) system call numbers of the architectures the filter knows.
_SECCOMP_ARCHITECTURES = {"x86_64": (0xC000003E, 157, 41, 425), "aarch64": (0xC00000B7, 167, 198, 425)}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def _seccomp_filter():
    """A classic BPF program: sockets only for TCP (Landlock rules TCP; UDP, raw, netlink and
    local sockets would go around it), no io_uring (which makes sockets without socket()),
    and no giving up the subreaper role. Refused calls fail with EPERM; the rest is allowed."""
    known = _SECCOMP_ARCHITECTURES.get(platform.machine())
    if known is None:
        return None
    arch, prctl, socket_call, io_uring_setup = known
    load, alu_and, jump_eq, jump_ge, ret = 0x20, 0x54, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    nr, arg0, arg1 = 0, 16, 24  # offsets in struct seccomp_data (the arguments' low 32 bits)
    program = [  # (code, jump if true, jump if false, k); jumps name a label
        ("", load, None, None, 4), ("", jump_eq, None, "deny", arch),  # another ABI: refuse
        ("", load, None, None, nr), ("", jump_ge, "deny", None, 0x40000000),  # x32 calls: refuse
        ("", jump_eq, "deny", None, io_uring_setup),
        ("", jump_eq, None, "socket", prctl), ("", load, None, None, arg0),
        ("", jump_eq, "deny", "allow", _PR_SET_CHILD_SUBREAPER),
        ("socket", jump_eq, None, "allow", socket_call), ("", load, None, None, arg0),
        ("", jump_eq, "stream", None, socket.AF_INET), ("", jump_eq, None, "deny", socket.AF_INET6),
        ("stream", load, None, None, arg1), ("", alu_and, None, None, 0xF),  # the type, without its flags
        ("", jump_eq, "allow", "deny", socket.SOCK_STREAM),
        ("deny", ret, None, None, deny), ("allow", ret, None, None, allow),
    ]
    labels = {label: index for index, (label, *_) in enumerate(program) if label}
    lines = [_SockFilter(code, labels[true] - index - 1 if true else 0, labels[false] - index - 1 if false else 0, k)
             for index, (_, code, true, false, k) in enumerate(program)]
    return (_SockFilter * len(lines))(*lines)


def _seccomp():
    program = _seccomp_filter()
    if program is None:
        return False
    fprog = _SockFprog(len(program), program)
    return _libc().prctl(_PR_SET_SECCOMP, 2, ctypes.byref(fprog), 0, 0) == 0  # SECCOMP_MODE_FILTER


def become_subreaper():
    """Orphans of this process's children become its own children, not init's: the grading
    process finds them under it (sandbox.py ends them all)."""
    if sys.platform.startswith("linux"):
        try:
            return _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            return False
    return False


# --- macOS: sandbox_init ----------------------------------------------------------------

def _macos_profile(reach):
    """Seatbelt: no TCP or UDP out (but the database gate) and no port bound; writes only in the
    private folder. IP sockets only: the worker's own channel to the grader is a local socket pair."""
    writable = " ".join(f'(subpath "{os.path.realpath(path)}")' for path in reach.writable)
    gate = f'(allow network-outbound (remote ip "localhost:{reach.database_port}")) ' if reach.database_port else ""
    return ('(version 1) (allow default) (deny network-outbound (remote ip "*:*")) '
            f'{gate}(deny network-bind (local ip "*:*")) '
            f'(deny file-write* (require-not (require-any {writable} (literal "/dev/null"))))')


def _macos(reach):
    library = ctypes.CDLL("/usr/lib/libsystem_sandbox.dylib")
    error = ctypes.c_char_p()
    if library.sandbox_init(_macos_profile(reach).encode(), 0, ctypes.byref(error)) != 0:
        raise OSError(f"sandbox_init: {error.value}")
    return ["files", "network"]


# --- for every system -------------------------------------------------------------------

def available():
    """The kinds of confinement this system gives a worker."""
    if sys.platform.startswith("linux"):
        abi = landlock_abi()
        kinds = ["files"] if abi >= 1 else []
        kinds += ["network"] if abi >= 4 else []
        kinds += ["processes"] if abi >= 6 and platform.machine() in _SECCOMP_ARCHITECTURES else []
        return kinds
    if sys.platform == "darwin":
        return ["files", "network"] if os.path.exists("/usr/lib/libsystem_sandbox.dylib") else []
    if os.name == "nt":
        return ["processes"]  # the Job object (sandbox.py)
    return []


def confine(reach):
    """Confine this process (it must have a single thread) before any student code runs; the
    kinds that now hold. Never fails: what the system cannot do is left out of the answer."""
    kinds = []
    try:
        if sys.platform.startswith("linux"):
            abi = landlock_abi()
            subreaper = become_subreaper()
            if abi >= 1:
                kinds += _landlock(reach, abi)
                if abi >= 6 and subreaper and _seccomp():
                    kinds.append("processes")
        elif sys.platform == "darwin":
            kinds += _macos(reach)
    except OSError:
        pass  # confined as far as it went; the grade says what holds
    return kinds


def summary(kinds):
    """One line saying how confined a grade's worker was."""
    missing = [kind for kind in KINDS if kind not in kinds]
    if not missing:
        return "confined: " + ", ".join(KINDS)
    if not kinds:
        return "not confined on this system: " + ", ".join(KINDS)
    return f"confined: {', '.join(kind for kind in KINDS if kind in kinds)}; not confined on this system: " \
           + ", ".join(missing)


# --- wording: what the student's code tried ---------------------------------------------

_WRITE_EVENTS = {"os.mkdir", "os.remove", "os.rmdir", "os.rename", "os.symlink", "os.link", "os.truncate",
                 "os.chmod", "os.chown", "os.utime", "shutil.rmtree", "shutil.move", "shutil.copyfile"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


@dataclass
class Attempts:
    """An audit hook's notes of what the student's code tried beyond its reach (wording only:
    the system refuses it, and code that goes around the hook is refused all the same)."""

    reach: Reach
    reads: bool = True  # reads are confined too (Linux), so reading elsewhere is an attempt
    tried: list = field(default_factory=list)

    def install(self):
        sys.addaudithook(self._hook)

    def take(self):
        tried, self.tried = self.tried, []
        return tried

    def _note(self, text):
        if text not in self.tried and len(self.tried) < 5:
            self.tried.append(text)

    def _hook(self, event, args):
        try:
            if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
                mode, flags = args[1] if len(args) > 1 else None, args[2] if len(args) > 2 else 0
                writes = any(letter in mode for letter in "wax+") if isinstance(mode, str) \
                    else bool((flags or 0) & _WRITE_FLAGS)
                self._check_path(args[0], writes)
            elif event in ("os.listdir", "os.scandir") and args and args[0] is not None:
                self._check_path(args[0], False)
            elif event in _WRITE_EVENTS:
                for path in args[:2]:
                    if isinstance(path, (str, bytes, os.PathLike)):
                        self._check_path(path, True)
            elif event == "sqlite3.connect" and args and isinstance(args[0], (str, bytes, os.PathLike)):
                if os.fsdecode(args[0]) not in ("", ":memory:") and not os.fsdecode(args[0]).startswith("file:"):
                    self._check_path(args[0], True)
            elif event in ("socket.connect", "socket.bind", "socket.sendto"):
                self._check_socket(event, args[0], args[1])
            elif event == "socket.__new__" and len(args) > 1 and args[1] == getattr(socket, "AF_UNIX", None):
                self._note("open a local (UNIX) socket: grading allows none")
            elif event in ("os.kill", "os.killpg") and args[1] != 0:
                if args[0] in self.reach.forbidden_pids or args[0] in (-1, 1):
                    self._note(f"send a signal to process {args[0]}, outside its own: grading allows none")
        except Exception:  # the hook must never be what fails
            pass

    def _check_path(self, path, writes):
        path = os.path.abspath(os.fsdecode(path))
        if path == os.devnull or any(_within(path, top) for top in self.reach.writable):
            return
        real = os.path.realpath(path)  # a link, or /var and /private/var on macOS
        if any(_within(real, os.path.realpath(top)) for top in self.reach.writable):
            return
        if writes:
            self._note(f"write {path}: grading allows writing only in its private copy")
        elif self.reads and not within_reach(path, self.reach) and not within_reach(real, self.reach):
            self._note(f"read {path}: grading allows reading only its private copy and Python's own files")

    def _check_socket(self, event, sock, address):
        family = getattr(sock, "family", None)
        if family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            host, port = address[0], address[1]
            if event == "socket.bind":
                self._note(f"listen on TCP port {port}: grading allows none")
            elif port != self.reach.database_port:
                self._note(f"open a network connection to {host}:{port}: grading allows none")
        elif family == getattr(socket, "AF_UNIX", None):
            self._note(f"connect to the local socket {address!r}: grading allows none")


def within_reach(path, reach):
    """Whether the worker may read `path` once confined."""
    path = os.path.abspath(path)
    return any(_within(path, top) for top in reach.readable + reach.writable)


def _within(path, top):
    top = os.path.abspath(top)
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)
