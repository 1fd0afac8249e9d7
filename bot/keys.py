"""Redis key names. One hash tag per deployment prefix, so every multi-key script is single-slot
and works on Redis Cluster too; no production path ever needs KEYS or SCAN."""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str = "escalator") -> None:
        self.prefix = prefix
        self.base = "{" + prefix + "}"

    def case(self, case_id: str) -> str:
        return f"{self.base}:case:{case_id}"

    def timeline(self, case_id: str) -> str:
        return f"{self.base}:case:{case_id}:timeline"

    def threads(self, case_id: str) -> str:
        return f"{self.base}:case:{case_id}:threads"

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

    def outbox(self, platform: str) -> str:
        return f"{self.base}:outbox:{platform}"

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
