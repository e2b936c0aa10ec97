"""The mock's store: a route's ``[route.history]`` and ``[route.storage]`` kept in memory with the contract's rules,
as the gateway's stores keep them (and as the Rust SDK's mock does).

History: offsets consecutive from 1 in each epoch, a new epoch when a group's stream starts again (the history was
reset, or every message of the group expired), retention by `size` and `ttl` on the mock's clock, the `max_groups`
and `max_bytes` quotas, and `complete` and the 4 MiB page as `history.read` defines them. Storage: one revision
counter for the route's writes (never 0; a removal takes one too), compare-and-set on it (0: only when the key does
not exist), time to live on the mock's clock, and the `max_keys` and `max_bytes` quotas.

`MockMemory` is the mock host's side of the history and storage calls: what the gateway refuses, in the contract's
order, then the store's answer, whose event is due when the current event returns.
"""

from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Dict, List, Optional, Union

from ..errors import Refused
from ..history import HistoryEntry, HistoryPage, Position
from ..memory import U64_MAX, StorageError
from ..storage import StoredValue


@dataclass
class HistoryConfig:
    """A route's ``[route.history]`` table, as a test turns it on (``MockHost(..., history=HistoryConfig())``);
    the defaults are the gateway's."""

    #: Messages kept per group: appending one more drops the oldest.
    size: int = 100
    #: How long a message is kept, in seconds (`ttl_secs`).
    ttl: float = 86_400
    #: The largest message `append` takes; a larger one is refused with "too-large".
    max_message_bytes: int = 64 << 10
    #: Groups with history at once; an append that would start one more fails with "quota-exceeded".
    max_groups: int = 10_000
    #: Bytes of messages the route's history holds; an append past it fails with "quota-exceeded".
    max_bytes: int = 256 << 20


@dataclass
class StorageConfig:
    """A route's ``[route.storage]`` table, as a test turns it on (``MockHost(..., storage=StorageConfig())``); the
    defaults are the gateway's."""

    #: The longest key; an empty or longer one is refused with "invalid-name".
    max_key_bytes: int = 256
    #: The largest value; a larger one is refused with "too-large".
    max_value_bytes: int = 64 << 10
    #: Keys at once; a write that would create one more fails with "quota-exceeded".
    max_keys: int = 100_000
    #: Bytes of keys and values together; a write past it fails with "quota-exceeded".
    max_bytes: int = 256 << 20


#: The most message bytes one page holds, as in the gateway (the WIT's `history.read`): 4 MiB.
MAX_PAGE_BYTES = 4 << 20


def message_bytes(message: Union[str, bytes]) -> int:
    """What a message weighs against the limits: its UTF-8 bytes for text."""
    return len(message.encode()) if isinstance(message, str) else len(message)


@dataclass
class _Stream:
    """One group's stream: its epoch, the next offset, and the messages kept, oldest first."""

    epoch: str
    next: int = 1
    entries: Deque[HistoryEntry] = field(default_factory=deque)


class Histories:
    """Every group's stream."""

    def __init__(self):
        self.groups: Dict[str, _Stream] = {}
        #: How many epochs were started: each new one is named after the count, so none repeats.
        self.epochs = 0

    def reset(self) -> None:
        """Loses every group's history, as a store whose data was lost: each starts a new epoch with its next append."""
        self.groups.clear()

    def _expire(self, config: HistoryConfig, now_ms: int) -> None:
        """Drops the messages that outlived the ttl at `now_ms`, and the groups left without any: their next append
        starts a new epoch."""
        ttl_ms = round(config.ttl * 1000)
        for stream in self.groups.values():
            while stream.entries and stream.entries[0].appended_at_ms + ttl_ms <= now_ms:
                stream.entries.popleft()
        self.groups = {g: s for g, s in self.groups.items() if s.entries}

    def _bytes(self) -> int:
        return sum(message_bytes(e.message) for s in self.groups.values() for e in s.entries)

    def append(self, config: HistoryConfig, group: str, message, now_ms: int) -> Union[Position, StorageError]:
        self._expire(config, now_ms)
        stream = self.groups.get(group)
        held = len(stream.entries) if stream else 0
        if held == 0 and len(self.groups) >= config.max_groups:
            return StorageError.quota_exceeded()
        # What `size` will drop to make room, so that a full group still takes a message within `max_bytes`.
        dropping = max(held + 1 - config.size, 0)
        freed = sum(message_bytes(e.message) for e in list(stream.entries)[:dropping]) if stream else 0
        if self._bytes() - freed + message_bytes(message) > config.max_bytes:
            return StorageError.quota_exceeded()
        if stream is None:
            self.epochs += 1
            stream = self.groups[group] = _Stream(f"mock-epoch-{self.epochs}")
        for _ in range(dropping):
            stream.entries.popleft()
        offset = stream.next
        stream.next += 1
        stream.entries.append(HistoryEntry(offset, message, now_ms))
        return Position(offset, stream.epoch)

    def read(self, config: HistoryConfig, group: str, since: Optional[Position], limit: int,
             now_ms: int) -> HistoryPage:
        self._expire(config, now_ms)
        limit = min(max(limit, 1), config.size)
        stream = self.groups.get(group)
        if stream is None:
            # No history: complete only as "the latest page"; a position names a stream that is gone.
            return HistoryPage("", [], since is None)
        oldest = stream.entries[0].offset
        if since is None:
            start, complete = max(oldest, stream.next - limit), True
        elif since.epoch != stream.epoch:
            start, complete = oldest, False
        elif since.offset >= stream.next:
            # A position past the end is not one of this stream's.
            start, complete = stream.next, False
        else:
            start, complete = max(since.offset + 1, oldest), since.offset + 1 >= oldest
        entries: List[HistoryEntry] = []
        held = 0
        for entry in [e for e in stream.entries if e.offset >= start][:limit]:
            # A page since a position ends at the page's byte budget (always one message).
            size = message_bytes(entry.message)
            if since is not None and entries and held + size > MAX_PAGE_BYTES:
                break
            held += size
            entries.append(entry)
        # The latest page keeps the newest that fit.
        while held > MAX_PAGE_BYTES and len(entries) > 1:
            held -= message_bytes(entries.pop(0).message)
        return HistoryPage(stream.epoch, [HistoryEntry(e.offset, e.message, e.appended_at_ms) for e in entries],
                           complete)

    def entries(self, config: HistoryConfig, group: str, now_ms: int) -> List[HistoryEntry]:
        """What `group` keeps now, oldest first."""
        return self.read(config, group, None, config.size, now_ms).entries


class Keys:
    """The route's keys."""

    def __init__(self):
        self.values: Dict[str, StoredValue] = {}
        #: The revision of the route's last write.
        self.revision = 0

    def _expire(self, now_ms: int) -> None:
        """Forgets the values that expired by `now_ms`: they read as absent, and no longer count against the
        quotas."""
        self.values = {k: v for k, v in self.values.items() if v.expires_at_ms is None or v.expires_at_ms > now_ms}

    def get(self, key: str, now_ms: int) -> Optional[StoredValue]:
        self._expire(now_ms)
        value = self.values.get(key)
        return None if value is None else StoredValue(value.value, value.revision, value.expires_at_ms)

    def write(self, config: StorageConfig, key: str, value: Optional[bytes], ttl_ms: Optional[int],
              if_revision: Optional[int], now_ms: int) -> Union[int, StorageError]:
        """Sets `key` to `value`, or removes it when `value` is None; answers the revision the write made."""
        self._expire(now_ms)
        old = self.values.get(key)
        current = old.revision if old else 0
        if if_revision is not None and if_revision != current:
            return StorageError.conflict(current)
        key_bytes = len(key.encode())
        if value is not None:
            keys = len(self.values) + (old is None)
            held = sum(len(k.encode()) + len(v.value) for k, v in self.values.items())
            old_bytes = key_bytes + len(old.value) if old else 0
            if keys > config.max_keys or held - old_bytes + key_bytes + len(value) > config.max_bytes:
                return StorageError.quota_exceeded()
        # A removal is a write too: it gets a revision of its own, whether or not the key existed.
        self.revision += 1
        if value is None:
            self.values.pop(key, None)
        else:
            expires = None if ttl_ms is None else min(now_ms + ttl_ms, U64_MAX)
            self.values[key] = StoredValue(value, self.revision, expires)
        return self.revision


@dataclass
class StoreAnswer:
    """A request the store answered, whose event is still due: `event` names the plugin's method ("on_appended",
    "on_history", "on_read", "on_written") and `result` its answer or `StorageError`."""

    id: int
    owner: Optional[int]
    event: str
    result: object


@dataclass
class MockMemory:
    """The route's memory and the mock host's history and storage calls. The base of `MockState`, whose `limits`,
    `in_init`, `now` and `is_live` it uses: refused as the gateway refuses (not-configured, too-large, invalid-name,
    not-now, unknown-connection, too-many-pending, in that order), answered by the store at once."""

    #: Whether the plugin defines history / storage events (without, the gateway would not load one that uses them).
    history_events: bool = False
    storage_events: bool = False
    #: The route's ``[route.history]`` and ``[route.storage]``, when the test gave it them.
    history_config: Optional[HistoryConfig] = None
    storage_config: Optional[StorageConfig] = None
    #: The route's history and keys: the store's, so they outlive instances.
    history: Histories = field(default_factory=Histories)
    keys: Keys = field(default_factory=Keys)
    #: Answers whose events are due, oldest first.
    answers: Deque[StoreAnswer] = field(default_factory=deque)
    last_store_request: int = 0
    #: Why the store fails every request, while a test makes it fail.
    store_failure: Optional[str] = None

    def _history_config(self) -> HistoryConfig:
        if not self.history_events:
            raise RuntimeError(
                "the plugin uses history but defines neither on_appended nor on_history, so the gateway would not "
                "load it (\"imports `wssgate:plugin/history` but does not export `wssgate:plugin/history-events`\")"
            )
        if self.history_config is None:
            raise Refused("not-configured")
        return self.history_config

    def _storage_config(self) -> StorageConfig:
        if not self.storage_events:
            raise RuntimeError(
                "the plugin uses storage but defines neither on_read nor on_written, so the gateway would not load "
                "it (\"imports `wssgate:plugin/storage` but does not export `wssgate:plugin/storage-events`\")"
            )
        if self.storage_config is None:
            raise Refused("not-configured")
        return self.storage_config

    def _check_group(self, group: str) -> None:
        if not group or len(group.encode()) > self.limits.name_bytes:
            raise Refused("invalid-name")

    def _check_key(self, config: StorageConfig, key: str) -> None:
        if not key or len(key.encode()) > config.max_key_bytes:
            raise Refused("invalid-name")

    def _take_request(self, owner: Optional[int], event: str, answer) -> int:
        """Takes a request (once its table, names and sizes passed) unless made from `init`, for an owner this
        instance does not serve, or past `max_storage_requests_per_instance` waiting; the store answers it at once
        (or fails, while the test makes it), and its event is due when the current event returns."""
        if self.in_init:
            raise Refused("not-now")
        if owner is not None and not self.is_live(owner):
            raise Refused("unknown-connection")
        if len(self.answers) >= self.limits.store_requests:
            raise Refused("too-many-pending")
        result = StorageError.unavailable(self.store_failure) if self.store_failure is not None else answer()
        self.last_store_request += 1
        self.answers.append(StoreAnswer(self.last_store_request, owner, event, result))
        return self.last_store_request

    def history_append(self, group, message, owner):
        config = self._history_config()
        if message_bytes(message) > config.max_message_bytes:
            raise Refused("too-large")
        self._check_group(group)
        return self._take_request(owner, "on_appended",
                                  lambda: self.history.append(config, group, message, self.now))

    def history_read(self, group, since, limit, owner):
        config = self._history_config()
        self._check_group(group)
        return self._take_request(owner, "on_history",
                                  lambda: self.history.read(config, group, since, limit, self.now))

    def storage_get(self, key, owner):
        config = self._storage_config()
        self._check_key(config, key)
        return self._take_request(owner, "on_read", lambda: self.keys.get(key, self.now))

    def storage_set(self, key, value, ttl_ms, if_revision, owner):
        config = self._storage_config()
        if len(value) > config.max_value_bytes:
            raise Refused("too-large")
        self._check_key(config, key)
        return self._take_request(owner, "on_written",
                                  lambda: self.keys.write(config, key, value, ttl_ms, if_revision, self.now))

    def storage_remove(self, key, if_revision, owner):
        config = self._storage_config()
        self._check_key(config, key)
        return self._take_request(owner, "on_written",
                                  lambda: self.keys.write(config, key, None, None, if_revision, self.now))
