"""The journal of ``agner serve``: every accepted input, appended before it is acted on.

A journal file is a header line, then records: a 4-byte big-endian length, a
4-byte CRC-32 of the payload, and the payload, a MessagePack :class:`Entry`
(time in microseconds, who sent it, the wire message). The routing core is
deterministic, so replaying the entries in order through a fresh server state
reaches the state the server had. A record cut short by a crash (the process
killed mid-write) fails its length or CRC check: replay stops there and the
file is truncated to its last whole record.

The header names a fingerprint of the configuration; a journal written under
another configuration is refused rather than replayed into a different center.

Durability (``fsync``): ``always`` fsyncs every batch before it is acted on;
``interval`` fsyncs at most every ``fsync_interval_ms``; ``never`` leaves it to
the OS. Every policy survives the process being killed (the records are in the
OS page cache once written); only ``always`` also survives a power loss.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import msgspec

from agner.protocol import ClientMessage

__all__ = ["Entry", "Journal", "JournalError", "read_entries"]

_MAGIC = b"agner-journal 1 "
_HEAD = struct.Struct(">II")


class JournalError(RuntimeError):
    """A journal that cannot be used (another configuration, unreadable)."""


class Entry(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One accepted input: its time, the sender's tenant index and agent id (-1:
    a service session), and the message."""

    now: int
    tenant: int
    agent: int
    msg: ClientMessage


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Entry)


def _header(fingerprint: str) -> bytes:
    return _MAGIC + fingerprint.encode() + b"\n"


def read_entries(path: Path, fingerprint: str) -> tuple[list[Entry], int]:
    """The whole entries of a journal and the byte offset just past the last one."""
    data = path.read_bytes()
    head = _header(fingerprint)
    if not data.startswith(_MAGIC):
        raise JournalError(f"{path}: not an agner journal")
    if not data.startswith(head):
        raise JournalError(
            f"{path}: written under another configuration (fingerprint differs); "
            "move it away to start afresh, or start with the configuration it was written under"
        )
    return _scan(data, len(head))


def _scan(data: bytes, pos: int) -> tuple[list[Entry], int]:
    entries: list[Entry] = []
    n = len(data)
    while pos + 8 <= n:
        length, crc = _HEAD.unpack_from(data, pos)
        start = pos + 8
        if start + length > n:
            break
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            break
        try:
            entries.append(_decoder.decode(payload))
        except msgspec.DecodeError:
            break
        pos = start + length
    return entries, pos


class Journal:
    """An append-only journal file (see the module's docstring).

    ``open`` returns the journal and the entries already in it, in order; the
    caller replays them before accepting new input.
    """

    def __init__(self, fd: int, path: Path, fsync: str) -> None:
        self._fd = fd
        self.path = path
        self.fsync = fsync
        self.dirty = False
        self.entries = 0

    @classmethod
    def open(cls, path: Path, fingerprint: str, fsync: str) -> tuple[Journal, list[Entry]]:
        entries: list[Entry] = []
        if path.exists() and path.stat().st_size > 0:
            entries, end = read_entries(path, fingerprint)
            if end < path.stat().st_size:  # a torn last record: cut it off
                with open(path, "r+b") as f:
                    f.truncate(end)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(fd, _header(fingerprint))
            os.fsync(fd)
        journal = cls(fd, path, fsync)
        journal.entries = len(entries)
        return journal, entries

    @staticmethod
    def encode(entry: Entry) -> bytes:
        payload = _encoder.encode(entry)
        return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload

    def append(self, records: list[bytes]) -> None:
        """Write encoded records in one system call; fsync now under ``always``."""
        data = b"".join(records)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.entries += len(records)
        if self.fsync == "always":
            os.fsync(self._fd)
        else:
            self.dirty = True

    def sync(self) -> None:
        """fsync if anything was written since the last one."""
        if self.dirty:
            os.fsync(self._fd)
            self.dirty = False

    def sync_now(self) -> None:
        """fsync unconditionally (the caller cleared ``dirty``; may run in a thread)."""
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1
