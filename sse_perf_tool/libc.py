"""System calls that cannot block, made with the interpreter lock held (ctypes.PyDLL).

Python's socket methods give the interpreter lock up for every system call; getting it back means
waiting behind every thread that wants it, and at hundreds of streams in one process that wait,
not the call, is what a tester's request and the shared reader spend their time on. The calls
here never block (MSG_DONTWAIT, a zero poll timeout, epoll_ctl), so holding the lock through
them costs nobody anything. Where libc cannot be loaded (not Linux), AVAILABLE is False and the
callers use the socket module as before.

Imports nothing of sse-perf.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import select
import socket

_AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)
EPOLL_CTL_ADD, EPOLL_CTL_DEL = 1, 2


class _PollFd(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short)]


class _EpollEvent(ctypes.Structure):
    """struct epoll_event: packed on x86-64 only (the kernel's EPOLL_PACKED), 12 bytes there and
    16 elsewhere."""

    if platform.machine().lower() in ("x86_64", "amd64"):
        _pack_ = 1
    _fields_ = [("events", ctypes.c_uint32), ("data", ctypes.c_uint64)]


try:
    _LIBC = ctypes.PyDLL(None, use_errno=True)
    _recv = _LIBC.recv
    _recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    _recv.restype = ctypes.c_ssize_t
    _send = _LIBC.send
    _send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    _send.restype = ctypes.c_ssize_t
    _poll = _LIBC.poll
    _poll.argtypes = [ctypes.POINTER(_PollFd), ctypes.c_ulong, ctypes.c_int]
    _poll.restype = ctypes.c_int
    epoll_ctl = _LIBC.epoll_ctl
    epoll_ctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    epoll_ctl.restype = ctypes.c_int
    AVAILABLE = hasattr(socket, "MSG_DONTWAIT") and hasattr(select, "POLLIN")
except (OSError, AttributeError):
    _LIBC = _recv = _send = _poll = epoll_ctl = None  # type: ignore[assignment]
    AVAILABLE = False

_SEND_FLAGS = getattr(socket, "MSG_DONTWAIT", 0) | getattr(socket, "MSG_NOSIGNAL", 0)


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))  # OSError picks the subclass (BrokenPipeError, ...) from the code


def recv(fd: int, buffer, size: int) -> bytes:
    """What is ready on `fd`, up to `size` bytes, into `buffer` (a ctypes string buffer of at
    least `size`); b"" when the peer closed. BlockingIOError when nothing is ready."""
    n = _recv(fd, buffer, size, socket.MSG_DONTWAIT)
    if n > 0:
        return ctypes.string_at(buffer, n)
    if n == 0:
        return b""
    code = ctypes.get_errno()
    if code in _AGAIN:
        raise BlockingIOError(code, os.strerror(code))
    raise _error(code)


def send_ready(fd: int, data: bytes) -> int:
    """Write as much of `data` as the socket's buffer takes now; the count written (0 when it takes
    nothing now: the caller writes the rest the usual way). OSError as socket.send() raises it."""
    n = _send(fd, data, len(data), _SEND_FLAGS)
    if n >= 0:
        return n
    code = ctypes.get_errno()
    if code in _AGAIN:
        return 0
    raise _error(code)


def readable_now(fd: int):
    """True when `fd` has something to read or has closed (poll with no wait), False when not, and
    None when poll could not tell (the caller asks the usual way)."""
    entry = _PollFd(fd, select.POLLIN, 0)
    n = _poll(ctypes.byref(entry), 1, 0)
    if n < 0:
        return None
    return n > 0


def epoll_add(epfd: int, fd: int, events: int) -> None:
    """epoll_ctl(EPOLL_CTL_ADD) with the fd as its data, as select.epoll.register() does.
    FileExistsError when it is in the set already; OSError as register() raises it."""
    event = _EpollEvent(events, fd)
    if epoll_ctl(epfd, EPOLL_CTL_ADD, fd, ctypes.byref(event)) != 0:
        raise _error(ctypes.get_errno())
