"""The one YAML config file: typed models, cross-reference checks, and errors a person can act on.

Every error names the file, the key path and what is wrong, for example
``escalator.yaml: tiers[2].policy: unknown policy 'l9-default' (known: l2-default, l3-default)``.
The bot refuses to start half-configured: all problems are reported together.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import croniter
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    field_validator,
    model_validator,
)

from bot import platforms as registry
from bot.durations import parse_duration
from bot.model import Platform, Severity

SENSITIVE_DEFAULT = ["billing", "account", "payment", "compliance", "fraud", "identity", "health"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        raise ValueError(f"'{value}' has no unit (write e.g. {value}m or {value}h)")
    if isinstance(value, str):
        return parse_duration(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _listify(value: Any) -> Any:
    """Let a single value stand where a list is expected (`segment: enterprise`)."""
    return [value] if isinstance(value, str) else value


StrList = Annotated[list[str], BeforeValidator(_listify)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _known_platform(name: str) -> str:
    if registry.get(name) is None:
        known = ", ".join(registry.names()) or "none registered"
        raise ValueError(f"unknown platform '{name}' (known: {known})")
    return name


class PlatformIds(RootModel[dict[str, str]]):
    """One id per registered platform: a channel, or a team's thread id (`{slack: C0L2, teams: ...}`)."""

    model_config = ConfigDict(frozen=True)
    root: dict[str, str] = Field(default_factory=dict)

    @field_validator("root")
    @classmethod
    def _check_platforms(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            _known_platform(name)
        return value

    def get(self, platform: Platform) -> str | None:
        return self.root.get(platform)

    def items(self) -> list[tuple[Platform, str]]:
        return [(p, v) for p, v in self.root.items() if v]


class WorkingHours(_Model):
    start: time
    end: time
    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])  # Monday=0

    @classmethod
    def parse(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", value)
        if not match:
            raise ValueError(f"'{value}' is not a time range (write e.g. \"09:00-17:00\")")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
            raise ValueError(f"'{value}' has an impossible time")
        end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
        return {"start": time(h1, m1), "end": end}


class Person(_Model):
    """Someone the bot pages, invites or tells. Platform ids are written as `<platform>: <id>`."""

    name: str
    ids: dict[str, str] = Field(default_factory=dict, description="user id per registered platform")
    email: str | None = None
    skills: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)
    timezone: str | None = None
    hours: Annotated[WorkingHours | None, BeforeValidator(WorkingHours.parse)] = None
    max_load: int = Field(5, ge=1, description="open cases and swarms before they count as busy")

    @model_validator(mode="before")
    @classmethod
    def _collect_ids(cls, data: Any) -> Any:
        """`slack: U0BEN` (any registered platform's name as a key) becomes `ids: {slack: U0BEN}`."""
        if not isinstance(data, dict):
            return data
        ids = dict(data.get("ids") or {})
        rest = {}
        for key, value in data.items():
            if key != "ids" and registry.get(key) is not None:
                if value is not None:
                    ids[key] = str(value)
            else:
                rest[key] = value
        return {**rest, "ids": ids} if ids or "ids" in data else rest

    def platform_id(self, platform: Platform) -> str | None:
        return self.ids.get(platform)


class Schedule(_Model):
    rotation: Literal["daily", "weekly"]
    handoff: str = Field("monday 09:00", description="'monday 09:00' for weekly, '09:00' for daily")
    members: list[str] = Field(min_length=1)
    start: str | None = Field(None, description="ISO date the rotation counts from (default 2024-01-01)")

    @field_validator("handoff")
    @classmethod
    def _check_handoff(cls, value: str) -> str:
        parts = value.lower().split()
        clock = parts[-1] if parts else ""
        if not re.fullmatch(r"\d{1,2}:\d{2}", clock) or (len(parts) == 2 and parts[0] not in WEEKDAYS):
            raise ValueError(f"'{value}' is not a hand-off time (write e.g. \"monday 09:00\" or \"09:00\")")
        if len(parts) > 2:
            raise ValueError(f"'{value}' is not a hand-off time (write e.g. \"monday 09:00\")")
        return value

    def handoff_day_and_time(self) -> tuple[int, time]:
        parts = self.handoff.lower().split()
        hour, minute = (int(x) for x in parts[-1].split(":"))
        day = WEEKDAYS.index(parts[0]) if len(parts) == 2 else 0
        return day, time(hour, minute)


class PolicyStep(_Model):
    notify: StrList = Field(min_length=1)
    wait: Duration | None = None
    skip_off_hours: bool = Field(True, description="skip people outside their working hours")


class Policy(_Model):
    steps: list[PolicyStep] = Field(min_length=1)
    repeat: int = Field(0, ge=0, le=10)


class Sla(_Model):
    acknowledge: Duration | None = None
    resolve: Duration | None = None
    warn_at: float = Field(0.8, gt=0, lt=1, description="share of the time at which to warn")
    pause_when: list[Literal["customer", "vendor"]] = Field(
        default_factory=list, description="pause the clocks while waiting on the customer or a vendor"
    )


class Tier(_Model):
    id: str
    name: str
    kind: Literal["team", "vendor"] = Field(
        "team", description="vendor: a connected vendor works the case; defaults to vendor for the id 'vendor'")
    target_share: float | None = Field(None, ge=0, le=1)
    channels: PlatformIds = Field(default_factory=PlatformIds)
    private_channels: PlatformIds = Field(default_factory=PlatformIds)
    members: list[str] = Field(default_factory=list)
    lead: str | None = None
    policy: str | None = None
    sla: Sla | None = None
    vendor_nudge: Duration | None = Field(None, description="remind the owner if a vendor is silent")

    @model_validator(mode="before")
    @classmethod
    def _vendor_by_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kind" not in data and str(data.get("id", "")).lower() == "vendor":
            return {**data, "kind": "vendor"}
        return data


class Customer(_Model):
    name: str
    segment: str = "smb"
    csm: str | None = None
    channels: PlatformIds = Field(default_factory=PlatformIds)


class RuleIf(_Model):
    category: StrList = Field(default_factory=list)
    severity: Annotated[list[Severity], BeforeValidator(_listify)] = Field(default_factory=list)
    segment: StrList = Field(default_factory=list)
    customer: StrList = Field(default_factory=list)
    keywords: StrList = Field(default_factory=list)
    channel: StrList = Field(default_factory=list, description="channel the escalation came from")


class RuleThen(_Model):
    tier: str | None = None
    private: bool = False
    swarm: bool = False
    add: StrList = Field(default_factory=list)
    notify_csm: bool = False


class Rule(_Model):
    if_: RuleIf = Field(default_factory=RuleIf, alias="if")
    then: RuleThen


class SwarmSettings(_Model):
    channel: PlatformIds = Field(default_factory=PlatformIds)
    experts: int = Field(3, ge=1, le=20)
    invite_timeout: Duration = Field(timedelta(minutes=10), description="invite the next expert after this")
    skills: dict[str, StrList] = Field(
        default_factory=dict, description="category or keyword -> skills a swarm on such a case needs")


class Webhook(_Model):
    """A status page endpoint: every declare, update and resolve is POSTed there, signed with `secret`."""

    url: str = Field(pattern=r"^https?://")
    secret: str = Field(min_length=1)


class CrisisSettings(_Model):
    commanders: list[str] = Field(default_factory=list)
    roles: list[str] = Field(
        default_factory=lambda: ["commander", "communications", "tech_lead", "scribe", "customer_liaison"]
    )
    update_every: dict[Severity, Duration] = Field(default_factory=dict)
    status_channels: PlatformIds = Field(default_factory=PlatformIds)
    webhooks: list[Webhook] = Field(default_factory=list)


class Digest(_Model):
    name: str
    to: list[str] = Field(default_factory=list)
    channels: PlatformIds = Field(default_factory=PlatformIds)
    every: str

    @field_validator("every")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"'{value}' is not a cron expression (write e.g. \"0 8 * * 1-5\")")
        return value


class Config(_Model):
    """The whole configuration, as validated at start."""

    timezone: str = "UTC"
    platforms: dict[str, Any] = Field(default_factory=dict, description="settings per registered platform")
    people: dict[str, Person] = Field(default_factory=dict)
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    policies: dict[str, Policy] = Field(default_factory=dict)
    tiers: list[Tier] = Field(min_length=1)
    customers: dict[str, Customer] = Field(default_factory=dict)
    routing: list[Rule] = Field(default_factory=list)
    sensitive_categories: list[str] = Field(default_factory=lambda: list(SENSITIVE_DEFAULT))
    swarm: SwarmSettings = Field(default_factory=SwarmSettings)
    crisis: CrisisSettings = Field(default_factory=CrisisSettings)
    digests: list[Digest] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        _zone(value)
        return value

    @field_validator("platforms", mode="before")
    @classmethod
    def _platform_settings(cls, value: Any) -> Any:
        """Each `platforms.<name>:` section is validated by the settings model its adapter registered."""
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for name, section in value.items():
            spec = registry.get(_known_platform(str(name)))
            assert spec is not None
            if spec.settings is None:
                if section:
                    raise ValueError(f"platform '{name}' takes no settings")
                continue
            out[str(name)] = spec.settings.model_validate(section or {})
        return out

    def platform_settings(self, name: str) -> Any:
        """The validated `platforms.<name>` section (the adapter's settings model), or None."""
        return self.platforms.get(name)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def tier(self, tier_id: str) -> Tier:
        for tier in self.tiers:
            if tier.id.lower() == tier_id.lower():
                return tier
        raise KeyError(tier_id)

    def find_tier(self, tier_id: str) -> Tier | None:
        try:
            return self.tier(tier_id)
        except KeyError:
            return None

    @property
    def tier_ids(self) -> list[str]:
        return [t.id for t in self.tiers]

    def person_by_platform_id(self, platform: Platform, user_id: str) -> str | None:
        """The config name of the person with this Slack/Teams user id, if any."""
        for key, person in self.people.items():
            if person.platform_id(platform) == user_id:
                return key
        return None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone '{name}' (use an IANA name such as Europe/Berlin)") from None


class ConfigError(Exception):
    """A config that cannot be used; `problems` are complete `file: path: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def load_config(path: str | Path) -> Config:
    """Read, validate and cross-check the config file; raise ConfigError naming every problem."""
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [f"{name}: file not found (copy escalator.yaml from the project, or pass --config FILE)"]
        ) from None
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read the file: {exc.strerror}"]) from None
    return parse_config(text, name)


def parse_config(text: str, name: str = "escalator.yaml") -> Config:
    """Validate config text; `name` is used in error messages."""
    try:
        data, twice = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{name}: {where}invalid YAML: {problem}"]) from None
    duplicates = [f"{name}: line {line}: {path} is defined twice; merge the two entries" for line, path in twice]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{name}: the top level must be a mapping of sections (tiers:, people:, ...)"])
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(duplicates + [f"{name}: {_describe(err, data)}" for err in exc.errors()]) from None
    problems = duplicates + [f"{name}: {p}" for p in check_references(config)]
    if problems:
        raise ConfigError(problems)
    return config


def _load_yaml(text: str) -> tuple[Any, list[tuple[int, str]]]:
    """The YAML data, and every key a mapping defines twice as (line, key path).

    Plain YAML loaders keep the last of two `ben:` entries without a word, so a second person,
    schedule or policy would silently replace the first.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        twice = _duplicate_keys(node, "") if node is not None else []
        return (loader.construct_document(node) if node is not None else None), twice
    finally:
        loader.dispose()


def _duplicate_keys(node: yaml.Node, path: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            label = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
            where = f"{path}.{label}" if path else label
            if isinstance(key, yaml.ScalarNode) and label != "<<":
                if label in seen:
                    found.append((key.start_mark.line + 1, where))
                seen.add(label)
            found += _duplicate_keys(value, where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _duplicate_keys(item, f"{path}[{i}]")
    return found


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-before[_duration(), timedelta]",) or "[" in str(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _describe(err: Any, data: Any) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("(" in p or "[" in p)))
    path = _path(loc)
    kind = err["type"]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        hint = f" (known keys: {', '.join(known)})" if known else ""
        return f"{_path(loc[:-1])}: unknown key '{loc[-1]}'{hint}; remove it or fix its spelling"
    if kind == "missing":
        return f"{path}: required key is missing; add it"
    if kind == "literal_error" or kind == "enum":
        return f"{path}: {msg.lower()}"
    if kind in ("dict_type", "model_type"):
        return f"{path}: must be a mapping (key: value), not {type(err.get('input')).__name__}"
    if kind == "list_type":
        return f"{path}: must be a list ([a, b]), not {type(err.get('input')).__name__}"
    return f"{path}: {msg}"


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the model at `loc`, to suggest the right spelling."""
    model: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            # dict-valued sections: people.<name>, schedules.<name> ...
            continue
        model = _inner_model(field.annotation)
        if model is None:
            return []
    if not hasattr(model, "model_fields"):
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _inner_model(annotation: Any) -> Any:
    stack = [annotation]
    while stack:
        current = stack.pop()
        if isinstance(current, type) and issubclass(current, BaseModel):
            return current
        stack.extend(getattr(current, "__args__", ()) or ())
        stack.extend((getattr(current, "__metadata__", ()) and ()) or ())
        origin = getattr(current, "__origin__", None)
        if origin is not None and hasattr(current, "__args__"):
            stack.extend(current.__args__)
    return None


def _targets(targets: list[str], where: str, config: Config, *, allow_channel: bool) -> list[str]:
    problems = []
    for i, target in enumerate(targets):
        kind, _, name = target.partition(":")
        if kind == "channel" and not name and allow_channel:
            continue
        if kind == "schedule" and name:
            if name not in config.schedules:
                problems.append(f"{where}[{i}]: unknown schedule '{name}'{_known(config.schedules)}")
        elif kind == "person" and name:
            if name not in config.people:
                problems.append(f"{where}[{i}]: unknown person '{name}'{_known(config.people)}")
        else:
            allowed = "schedule:NAME, person:NAME" + (" or channel" if allow_channel else "")
            problems.append(f"{where}[{i}]: '{target}' is not a target (use {allowed})")
    return problems


def _known(names: Any) -> str:
    names = list(names)
    return f" (known: {', '.join(names)})" if names else " (none are defined)"


def _channel_ids(config: Config) -> list[str]:
    """Channel names where the platforms need ids (`#l2-specialists`): nothing could be posted there."""
    places: list[tuple[str, PlatformIds]] = []
    for t, tier in enumerate(config.tiers):
        places += [(f"tiers[{t}].channels", tier.channels), (f"tiers[{t}].private_channels", tier.private_channels)]
    places += [(f"customers.{key}.channels", c.channels) for key, c in config.customers.items()]
    places += [("swarm.channel", config.swarm.channel), ("crisis.status_channels", config.crisis.status_channels)]
    places += [(f"digests[{d}].channels", digest.channels) for d, digest in enumerate(config.digests)]
    problems = []
    for where, ids in places:
        for platform, value in ids.items():
            spec = registry.get(platform)
            if spec is not None and not spec.looks_like_channel(value):
                problems.append(f"{where}.{platform}: '{value}' is not a {spec.label} channel id; "
                                f"use {spec.channel_id_hint or 'the channel id'}")
    return problems


def check_references(config: Config) -> list[str]:
    """Check every name that points into another section; return `path: problem` lines."""
    problems: list[str] = []
    people = config.people

    def person(ref: str, where: str) -> None:
        if ref not in people:
            problems.append(f"{where}: unknown person '{ref}'{_known(people)}")

    for key, p in people.items():
        if p.timezone:
            try:
                _zone(p.timezone)
            except ValueError as exc:
                problems.append(f"people.{key}.timezone: {exc}")
    for key, sched in config.schedules.items():
        for i, member in enumerate(sched.members):
            person(member, f"schedules.{key}.members[{i}]")
        if sched.rotation == "daily" and len(sched.handoff.split()) == 2:
            problems.append(f"schedules.{key}.handoff: a daily rotation hands off at a time only (e.g. \"09:00\")")
    for key, policy in config.policies.items():
        for s, step in enumerate(policy.steps):
            problems += _targets(step.notify, f"policies.{key}.steps[{s}].notify", config, allow_channel=True)
            if step.wait is None and s < len(policy.steps) - 1:
                problems.append(f"policies.{key}.steps[{s}].wait: required on every step but the last")
    seen: set[str] = set()
    for t, tier in enumerate(config.tiers):
        where = f"tiers[{t}]"
        if tier.id.lower() in seen:
            problems.append(f"{where}.id: tier '{tier.id}' is defined twice; give each tier its own id "
                            "or merge the two entries")
        seen.add(tier.id.lower())
        if tier.policy and tier.policy not in config.policies:
            problems.append(f"{where}.policy: unknown policy '{tier.policy}'{_known(config.policies)}")
        for i, member in enumerate(tier.members):
            person(member, f"{where}.members[{i}]")
        if tier.lead:
            person(tier.lead, f"{where}.lead")
        if tier.private_channels.items() and not tier.channels.items():
            problems.append(f"{where}.channels: a tier with private channels needs public channels too")
    for key, customer in config.customers.items():
        if customer.csm:
            person(customer.csm, f"customers.{key}.csm")
    for r, rule in enumerate(config.routing):
        where = f"routing[{r}]"
        if rule.then.tier and config.find_tier(rule.then.tier) is None:
            problems.append(f"{where}.then.tier: unknown tier '{rule.then.tier}'{_known(config.tier_ids)}")
        problems += _targets(rule.then.add, f"{where}.then.add", config, allow_channel=False)
        for i, cust in enumerate(rule.if_.customer):
            if cust not in config.customers:
                problems.append(f"{where}.if.customer[{i}]: unknown customer '{cust}'{_known(config.customers)}")
    problems += _channel_ids(config)
    problems += _swarm_skills(config)
    for i, commander in enumerate(config.crisis.commanders):
        person(commander, f"crisis.commanders[{i}]")
    for d, digest in enumerate(config.digests):
        for i, to in enumerate(digest.to):
            person(to, f"digests[{d}].to[{i}]")
    return problems


def _swarm_skills(config: Config) -> list[str]:
    """Every skill `swarm.skills` asks for must be someone's, else no swarm could ever cover it."""
    known = sorted({s.strip().lower() for p in config.people.values() for s in p.skills})
    problems = []
    for key, skills in config.swarm.skills.items():
        for i, skill in enumerate(skills):
            if skill.strip().lower() not in known:
                problems.append(f"swarm.skills.{key}[{i}]: nobody has the skill '{skill}'{_known(known)}; "
                                f"add it to someone's skills or fix its spelling")
    return problems
