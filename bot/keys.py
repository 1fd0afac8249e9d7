"""Redis key names. One hash tag per deployment prefix, so every multi-key script is single-slot
and works on Redis Cluster too; no production path ever needs KEYS or SCAN."""

from __future__ import annotations

PRIORITIES = (0, 1, 2)  # outbox priorities: pages and case cards, replies and posts, bulk


class Keys:
    def __init__(self, prefix: str = "escalator") -> None:
        self.prefix = prefix
        self.base = "{" + prefix + "}"

    def record(self, kind: str, record_id: str) -> str:
        """A versioned record: hash with `v` (version) and `d` (JSON)."""
        return f"{self.base}:{kind}:{record_id}"

    def case(self, case_id: str) -> str:
        return self.record("case", case_id)

    def timeline(self, case_id: str, kind: str = "case") -> str:
        return f"{self.base}:{kind}:{case_id}:timeline"

    def thread(self, name: str) -> tuple[str, str]:
        """(hash key, field suffix) of a thread's refs; a case tier thread keeps the case's hash."""
        parts = name.split(":")
        if len(parts) == 3 and parts[0] == "case":
            return f"{self.base}:case:{parts[1]}:threads", parts[2]
        return f"{self.base}:thread:{name}", "-"

    def created(self, kind: str) -> str:
        """Sorted set of a kind's record ids by creation time (ms)."""
        return f"{self.base}:idx:{kind}s"

    def index(self, kind: str, name: str, value: str) -> str:
        """Set of record ids by (index, value); cases: open cases by tier, customer, owner."""
        if kind == "case":
            return self.open_all if name == "all" else self.open_by(name, value)
        return f"{self.base}:idx:{kind}:{name}:{value}"

    @property
    def revisions(self) -> str:
        """Hash: record kind -> how many commits wrote a record of that kind (kinds marked `revised`)."""
        return f"{self.base}:revisions"

    @property
    def case_seq(self) -> str:
        return f"{self.base}:seq:case"

    @property
    def all_cases(self) -> str:
        """Sorted set of every case id by creation time (ms), for digests and listings."""
        return f"{self.base}:idx:cases"

    def open_by(self, index: str, value: str) -> str:
        """Set of open case ids by `tier`, `customer` or `owner`."""
        return f"{self.base}:idx:open:{index}:{value}"

    @property
    def open_all(self) -> str:
        return f"{self.base}:idx:open:all"

    def outbox(self, platform: str, priority: int) -> str:
        """One stream per platform and priority (0 pages and cards, 1 replies, 2 bulk)."""
        return f"{self.base}:outbox:{platform}:{priority}"

    def outboxes(self, platform: str) -> list[str]:
        """The platform's streams, most urgent first."""
        return [self.outbox(platform, priority) for priority in PRIORITIES]

    def lane(self, platform: str, lane: str) -> str:
        """Hash `seq` (last assigned) and `done` (highest finished) of one ordering lane."""
        return f"{self.base}:lane:{platform}:{lane}"

    def outbox_delayed(self, platform: str) -> str:
        return f"{self.base}:outbox:{platform}:delayed"

    def dead(self, platform: str) -> str:
        return f"{self.base}:dead:{platform}"

    def sent(self, platform: str, message_id: str) -> str:
        return f"{self.base}:sent:{platform}:{message_id}"

    def pace(self, platform: str, channel: str) -> str:
        return f"{self.base}:pace:{platform}:{channel}"

    @property
    def timers(self) -> str:
        return f"{self.base}:timers"

    @property
    def timer_data(self) -> str:
        return f"{self.base}:timers:data"

    @property
    def timer_leases(self) -> str:
        return f"{self.base}:timers:leases"

    def dedupe(self, key: str) -> str:
        return f"{self.base}:dedupe:{key}"

    def ref(self, namespace: str, name: str) -> str:
        """Adapter-owned references (Teams conversation refs, card versions, ...)."""
        return f"{self.base}:ref:{namespace}:{name}"
