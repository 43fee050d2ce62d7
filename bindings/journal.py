"""The journal of ``agner serve``: every accepted input, appended before it is acted on.

The journal lives in the data directory as segments and snapshots:

- ``journal-N.bin``: the entries from the N-th on (N counts every entry ever
  journaled, from 0). A segment is a header line, then records: a 4-byte
  big-endian length, a 4-byte CRC-32 of the payload, and the payload, a
  MessagePack :class:`Entry` (time in microseconds, who sent it, the wire
  message). A record cut short by a crash (the process killed mid-write)
  fails its length or CRC check: replay stops there and the file is
  truncated to its last whole record.
- ``snapshot-N.bin``: the server's whole state after the first N entries, in
  one record of the same framing (length, CRC-32, payload) after a header
  line. It is written to ``snapshot-N.bin.tmp``, fsynced, renamed, and the
  directory fsynced; only then are older snapshots and segments deleted, and
  the newest ``keep`` snapshots are kept with the segments that follow them.

A start restores the newest snapshot that reads whole and replays only the
segments after it; a snapshot that does not (cut short, a bad CRC, written by
another agner build) is reported and the one before it is tried, down to
replaying every segment from entry 0. The core is deterministic, so either
way the server reaches the state it had. When neither is possible (the
segments a snapshot needs are missing or have a hole), :class:`JournalError`
says so and nothing is deleted or overwritten.

Headers name a fingerprint of the configuration; a journal or snapshot written
under another configuration is refused rather than replayed into a different
center. A data directory of an older agner (one ``journal.bin``) becomes
segment 0.

Durability (``fsync``): ``always`` fsyncs every batch before it is acted on;
``interval`` fsyncs at most every ``fsync_interval_ms``; ``never`` leaves it to
the OS. Every policy survives the process being killed (the records are in the
OS page cache once written); only ``always`` also survives a power loss. A
segment is fsynced before the snapshot that ends it is renamed into place.
"""

from __future__ import annotations

import itertools
import os
import re
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

import msgspec

from agner.protocol import ClientMessage

__all__ = [
    "Entry",
    "Journal",
    "JournalError",
    "read_entries",
    "read_snapshot",
    "segment_path",
    "snapshot_path",
    "write_snapshot",
]

_MAGIC = b"agner-journal 1 "
_SNAP_MAGIC = b"agner-snapshot 1 "
_HEAD = struct.Struct(">II")
_SEGMENT = re.compile(r"journal-(\d{12})\.bin")
_SNAPSHOT = re.compile(r"snapshot-(\d{12})\.bin")


class JournalError(RuntimeError):
    """A journal that cannot be used (another configuration, unreadable, a hole)."""


class _Foreign(JournalError):
    """Written under another configuration: never a reason to fall back."""


class Entry(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One accepted input: its time, the sender's tenant index and agent id (-1:
    a service session), and the message."""

    now: int
    tenant: int
    agent: int
    msg: ClientMessage


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Entry)


def _header(fingerprint: str, magic: bytes = _MAGIC) -> bytes:
    return magic + fingerprint.encode() + b"\n"


def segment_path(data_dir: Path, start: int) -> Path:
    """The segment whose first entry is the `start`-th."""
    return data_dir / f"journal-{start:012d}.bin"


def snapshot_path(data_dir: Path, entries: int) -> Path:
    """The snapshot of the state after the first `entries` entries."""
    return data_dir / f"snapshot-{entries:012d}.bin"


def _numbered(data_dir: Path, pattern: re.Pattern[str]) -> list[int]:
    if not data_dir.is_dir():
        return []
    found = (pattern.fullmatch(p.name) for p in data_dir.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def read_entries(path: Path, fingerprint: str) -> tuple[list[Entry], int]:
    """The whole entries of a segment and the byte offset just past the last one."""
    data = path.read_bytes()
    head = _header(fingerprint)
    if not data.startswith(_MAGIC):
        raise JournalError(f"{path}: not an agner journal")
    if not data.startswith(head):
        raise _Foreign(
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


def read_snapshot(path: Path, fingerprint: str) -> bytes:
    """The payload of a snapshot file.

    Raises:
        JournalError: not a snapshot, another configuration's, cut short or
            with a bad CRC (the message says which).
    """
    data = path.read_bytes()
    head = _header(fingerprint, _SNAP_MAGIC)
    if not data.startswith(_SNAP_MAGIC):
        raise JournalError(f"{path}: not an agner snapshot")
    if not data.startswith(head):
        raise _Foreign(f"{path}: written under another configuration (fingerprint differs)")
    pos = len(head)
    if len(data) < pos + 8:
        raise JournalError(f"{path}: cut short ({len(data)} bytes)")
    length, crc = _HEAD.unpack_from(data, pos)
    payload = data[pos + 8 :]
    if len(payload) != length:
        raise JournalError(f"{path}: cut short ({len(payload)} of {length} bytes)")
    if zlib.crc32(payload) != crc:
        raise JournalError(f"{path}: bad CRC")
    return payload


def _fsync_dir(data_dir: Path) -> None:
    fd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_segment(path: Path, fingerprint: str) -> int:
    """A new segment file with its header, open for appending."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    os.write(fd, _header(fingerprint))
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_snapshot(
    data_dir: Path, entries: int, fingerprint: str, payload: bytes, keep: int
) -> list[Path]:
    """Write ``snapshot-ENTRIES.bin`` durably (temp file, fsync, rename, fsync of
    the directory), then delete what the newest `keep` snapshots no longer need:
    older snapshots, and segments wholly before the oldest snapshot kept.
    Returns the files deleted. A crash at any point leaves the previous
    snapshot and every segment after it in place; an error writing the file
    removes the temp file and is raised."""
    path = snapshot_path(data_dir, entries)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            head = _header(fingerprint, _SNAP_MAGIC)
            _write_all(fd, head + _HEAD.pack(len(payload), zlib.crc32(payload)) + payload)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a disk full, say: the previous snapshot stands
        raise
    os.replace(tmp, path)
    _fsync_dir(data_dir)
    return prune(data_dir, keep)


def prune(data_dir: Path, keep: int) -> list[Path]:
    """Delete the snapshots older than the newest `keep`, and the segments that
    end before the oldest snapshot kept (no fallback can need them); `keep`
    0 deletes nothing."""
    snaps = _numbered(data_dir, _SNAPSHOT)
    if not snaps or keep == 0:
        return []
    kept = snaps[-keep:]
    gone = [snapshot_path(data_dir, n) for n in snaps[: -len(kept)]]
    segments = _numbered(data_dir, _SEGMENT)
    # A segment ends where the next begins; the last one never goes.
    for start, following in itertools.pairwise(segments):
        if following <= kept[0]:
            gone.append(segment_path(data_dir, start))
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def _chain(
    data_dir: Path, base: int, fingerprint: str, log: Callable[[str], None]
) -> tuple[list[Entry], int, bool]:
    """The entries from the `base`-th on, from the segments; the first entry of
    the last segment; and whether that segment must be created. A torn tail of
    the last segment is cut off (and said); a hole raises :class:`JournalError`."""
    every = _numbered(data_dir, _SEGMENT)
    segments = [s for s in every if s >= base]
    if not segments or segments[0] != base:
        if every or (base == 0 and _numbered(data_dir, _SNAPSHOT)):
            raise JournalError(
                f"{data_dir}: no journal segment begins at entry {base} "
                f"(segments begin at entries {every})"
            )
        return [], base, True  # a new data directory
    out: list[Entry] = []
    expected = base
    for start in segments:
        path = segment_path(data_dir, start)
        if start != expected:
            raise JournalError(
                f"{path}: begins at entry {start}, but the segment before it ends at {expected}"
            )
        last = start == segments[-1]
        size = path.stat().st_size
        if size == 0:  # created, the process killed before its header was written
            if not last:
                raise JournalError(f"{path}: empty, but later segments exist")
            return out, start, True
        entries, end = read_entries(path, fingerprint)
        if end < size:
            if not last:
                raise JournalError(
                    f"{path}: {size - end} bytes at its end are unreadable, "
                    "but later segments exist (a hole in the journal)"
                )
            log(
                f"agner serve: {path.name}: a torn last record ({size - end} bytes) cut off; "
                "it was never acknowledged"
            )
            with open(path, "r+b") as f:
                f.truncate(end)
        out += entries
        expected = start + len(entries)
    return out, segments[-1], False


class Journal:
    """The segment being appended to (see the module's docstring).

    :meth:`recover` returns the journal and what to start from; the caller
    restores the snapshot, replays the entries, then accepts new input.
    """

    def __init__(self, fd: int, path: Path, fsync: str, start: int, count: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()  # the fd changes hands at a rotation
        self.path = path
        self.fsync = fsync
        self.dirty = False
        self.start = start  # the global index of this segment's first entry
        self.entries = start + count  # entries journaled since entry 0

    @classmethod
    def recover(
        cls,
        data_dir: Path,
        fingerprint: str,
        fsync: str,
        restore: Callable[[int, bytes], None],
        log: Callable[[str], None],
    ) -> tuple[Journal, int, list[Entry]]:
        """Open the journal of `data_dir` and find where to start.

        ``restore(entries, payload)`` is called with the newest snapshot's
        payload; if it raises (a snapshot of another build, say), that is
        logged and the snapshot before it is tried, then a replay from entry 0.
        Returns the journal, the entries the restored snapshot covers (0:
        none) and the entries to replay after it.

        Raises:
            JournalError: another configuration's journal, or no snapshot to
                start from and no journal from entry 0 (a hole).
        """
        data_dir.mkdir(parents=True, exist_ok=True)
        legacy = data_dir / "journal.bin"
        if legacy.exists() and not _numbered(data_dir, _SEGMENT):
            os.replace(legacy, segment_path(data_dir, 0))
            _fsync_dir(data_dir)
        for tmp in data_dir.glob("snapshot-*.bin.tmp"):  # a snapshot cut short by a crash
            if tmp.is_file():  # (not what someone else put there under that name)
                log(f"agner serve: {tmp.name}: an unfinished snapshot, removed")
                tmp.unlink()
        failure: Exception | None = None
        for base in [*reversed(_numbered(data_dir, _SNAPSHOT)), 0]:
            try:
                entries, start, create = _chain(data_dir, base, fingerprint, log)
                if base:
                    restore(base, read_snapshot(snapshot_path(data_dir, base), fingerprint))
            except _Foreign:
                raise
            except Exception as exc:  # any snapshot that will not restore: the one before
                failure = exc
                what = f"snapshot-{base:012d}.bin" if base else "the journal from entry 0"
                log(f"agner serve: cannot start from {what}: {exc}")
                continue
            path = segment_path(data_dir, start)
            if create:
                fd = _new_segment(path, fingerprint)
                os.fsync(fd)
                _fsync_dir(data_dir)
            else:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            count = base + len(entries) - start
            return cls(fd, path, fsync, start, count), base, entries
        raise JournalError(
            f"{data_dir}: no snapshot can be restored and the journal does not go back "
            f"to entry 0 ({failure}); nothing was changed: restore the files, or start "
            "with the agner build that wrote them"
        )

    @staticmethod
    def encode(entry: Entry) -> bytes:
        payload = _encoder.encode(entry)
        return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload

    def append(self, records: list[bytes]) -> None:
        """Write encoded records in one system call; fsync now under ``always``."""
        _write_all(self._fd, b"".join(records))
        self.entries += len(records)
        if self.fsync == "always":
            os.fsync(self._fd)
        else:
            self.dirty = True

    def rotate(self, fingerprint: str) -> int:
        """Start a new segment at the current entry; returns the old segment's
        file descriptor, for the caller to fsync and close (a snapshot's thread)."""
        path = segment_path(self.path.parent, self.entries)
        fd = _new_segment(path, fingerprint)  # fsynced by the next sync or snapshot
        with self._lock:
            old, self._fd = self._fd, fd
        self.path = path
        self.start = self.entries
        return old

    def sync(self) -> None:
        """fsync if anything was written since the last one."""
        if self.dirty:
            os.fsync(self._fd)
            self.dirty = False

    def sync_now(self) -> None:
        """fsync unconditionally (the caller cleared ``dirty``; may run in a thread)."""
        with self._lock:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1
