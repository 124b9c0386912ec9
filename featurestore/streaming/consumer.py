"""The consumer-group side of ``featurestore stream``: reading, claiming, acknowledging.

Workers in one group share the streams: ``XREADGROUP`` gives each entry to one of them,
where it stays *pending* until ``XACK``. A consumer re-reads its own pending entries
after a restart (``read_own_pending``) and takes over entries pending on a stopped one
for ``claim_idle_seconds`` (``claim``). Acknowledgements and dead letters are only
queued here (``ack_later``, ``dead_letter``) and sent by ``acknowledge``, which the worker
calls once the entries' rows are stored offline.

The next read can be sent before the current batch is applied (``send_read`` /
``receive_read``), so Redis reads while Python decodes.

On a Redis Cluster one ``XREADGROUP`` reads streams of one slot, so the streams (and
their ``{stream}:dead`` dead letters) must share a hash tag (``{trips}:rides``,
``{trips}:fares``); the connection goes to the node serving that slot, looked up again
after a failure (a ``MOVED`` reply after a failover is one: the worker starts over).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from featurestore.errors import ConfigError
from featurestore.online.redis_protocol import is_cluster_url, pack_args
from featurestore.streaming.config import StreamSettings
from featurestore.streaming.resp import RespConnection, RespError

__all__ = ["GroupConsumer", "check_replies"]

log = logging.getLogger("featurestore.stream")

_ACKS_PER_COMMAND = 10_000


def check_replies(replies: list) -> None:
    """Raise the first error reply."""
    for reply in replies:
        if isinstance(reply, RespError):
            raise reply


class GroupConsumer:
    """One consumer (``consumer``) of ``settings.group`` on one connection (``conn``)."""

    def __init__(self, settings: StreamSettings, consumer: str):
        self.settings = settings
        self.consumer = consumer
        self.router = None
        locate = None
        if is_cluster_url(settings.redis_url):
            from featurestore.online.redis_cluster import ClusterRouter

            slot = _streams_slot([s.stream for s in settings.streams])
            self.router = ClusterRouter(settings.redis_url, f"stream:{consumer}")
            locate = lambda: self.router.locate(slot)  # noqa: E731 - a connection asks at each connect
        self.conn = RespConnection(settings.redis_url, name=f"featurestore-stream:{consumer}", locate=locate)
        self.acks: dict[str, dict[bytes, None]] = {}  # by stream, in order: acknowledged by acknowledge()
        self.dead: list[bytes] = []  # dead-letter XADDs, sent before the acknowledgements
        self._reading: bytes | None = None  # an XREADGROUP sent and not yet answered
        self.groups_ready = False

    # -- groups ----------------------------------------------------------------------

    def create_groups(self, streams: Sequence[str]) -> None:
        """Create the group on each stream (and the stream) unless it exists. Skipped while a
        read is in flight (its NOGROUP answer brings the caller back here)."""
        if self.groups_ready or self._reading is not None:
            return
        start = b"0" if self.settings.start == "earliest" else b"$"
        commands = [pack_args([b"XGROUP", b"CREATE", stream, self.settings.group, start, b"MKSTREAM"])
                    for stream in streams]
        for stream, reply in zip(streams, self.conn.pipeline(commands)):
            if isinstance(reply, RespError) and "BUSYGROUP" not in str(reply):
                raise reply
            if not isinstance(reply, RespError):
                log.info("created consumer group %s on stream %s", self.settings.group, stream)
        self.groups_ready = True

    def forget(self, streams: Sequence[str]) -> None:
        """Leave the group's consumer list tidy: delete this consumer if nothing is pending on it."""
        for stream in streams:
            pending = self.conn.call(b"XPENDING", stream, self.settings.group, b"-", b"+", b"1", self.consumer)
            if not pending:
                self.conn.call(b"XGROUP", b"DELCONSUMER", stream, self.settings.group, self.consumer)

    # -- reading -----------------------------------------------------------------------

    @property
    def reading(self) -> bool:
        """A read was sent and its answer not received yet."""
        return self._reading is not None

    def send_read(self, streams: Sequence[str], block_ms: int) -> None:
        """Send an XREADGROUP for new entries of ``streams``; its answer comes from ``receive_read``."""
        s = self.settings
        self._reading = pack_args([b"XREADGROUP", b"GROUP", s.group, self.consumer, b"COUNT", s.batch_size,
                                   b"BLOCK", block_ms, b"STREAMS", *streams, *([b">"] * len(streams))])
        self.conn.send([self._reading])

    def receive_read(self, recreate: Callable[[], None]):
        """The answer of the read sent before. When the stream or group was deleted meanwhile,
        ``recreate()`` (which creates them again) runs and the read is sent once more."""
        command, self._reading = self._reading, None
        try:
            return self.conn.receive_group()
        except RespError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.groups_ready = False
            recreate()
            return self.conn.read_group(command)

    def read_own_pending(self, stream: str, start: bytes) -> list:
        """Entries of ``stream`` after ``start`` delivered to this consumer name before and
        never acknowledged (a restart, or a lost connection)."""
        command = pack_args([b"XREADGROUP", b"GROUP", self.settings.group, self.consumer, b"COUNT",
                             self.settings.batch_size, b"STREAMS", stream, start])
        reply = self.conn.read_group(command)
        return reply[0][1] if reply else []

    def claim(self, stream: str, start: bytes) -> tuple[bytes, list, list]:
        """``XAUTOCLAIM`` entries pending on other consumers for ``claim_idle_seconds``:
        (next start, entries, ids deleted from the stream meanwhile)."""
        idle_ms = int(self.settings.claim_idle_seconds * 1000)
        reply = self.conn.call(b"XAUTOCLAIM", stream, self.settings.group, self.consumer, idle_ms, start,
                               b"COUNT", self.settings.batch_size)
        return reply[0], reply[1], reply[2] if len(reply) > 2 else []

    # -- acknowledging -----------------------------------------------------------------

    def ack_later(self, stream: str, ids: Sequence[bytes]) -> None:
        acks = self.acks.setdefault(stream, {})
        for entry_id in ids:
            acks[entry_id] = None

    def dead_letter(self, stream: str, bad: list[tuple[bytes, list[bytes], str]]) -> None:
        """Queue bad entries for ``{stream}:dead`` (sent by ``acknowledge``, before they are acknowledged)."""
        for entry_id, fields, reason in bad:
            log.warning("stream %s: entry %s is bad (%s); moved to %s:dead", stream, entry_id.decode(), reason, stream)
            self.dead.append(pack_args([b"XADD", f"{stream}:dead", b"MAXLEN", b"~", b"100000", b"*",
                                        b"entry_id", entry_id, b"error", reason, *fields]))

    def send_dead_letters(self) -> None:
        if self.dead:
            check_replies(self.conn.pipeline(self.dead))
            self.dead = []

    def acknowledge(self) -> None:
        """``XACK`` every queued entry (call once their rows are stored)."""
        commands = []
        for stream, ids in self.acks.items():
            ids = list(ids)
            for start in range(0, len(ids), _ACKS_PER_COMMAND):
                commands.append(pack_args([b"XACK", stream, self.settings.group,
                                           *ids[start : start + _ACKS_PER_COMMAND]]))
        if commands:
            check_replies(self.conn.pipeline(commands))
        self.acks = {}

    def reset(self) -> None:
        """After an error: drop the connection, the read in flight and everything queued."""
        self.conn.close()
        self._reading = None
        self.acks, self.dead = {}, []

    def close(self) -> None:
        self.conn.close()
        if self.router is not None:
            self.router.close()


def _streams_slot(streams: Sequence[str]) -> int:
    """The one slot of the streams and their dead letters, or a ConfigError saying how to get one."""
    from featurestore.online.redis_cluster import key_slot

    slots = {key_slot(name.encode()) for s in streams for name in (s, f"{s}:dead")}
    if len(slots) != 1:
        raise ConfigError(
            f"on a Redis Cluster the streams {list(streams)} and their dead-letter streams must share one slot: "
            "give every stream name the same hash tag, e.g. '{trips}:rides' and '{trips}:fares' (quoted in YAML)")
    return slots.pop()
