"""The console end to end, as a newcomer runs it: `escalator console` reading a scripted session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLE_CONFIG, PROJECT_CONFIG

ESCALATOR = [sys.executable, "-m", "adapters.cli"]

SCENARIO = """\
/escalate sev2 customer:globex category:billing Charged twice for the November invoice
:advance 10m
:as cleo
/case ESC-1001 ack
/escalate ESC-1001 L3 needs a fix in the invoicing job
:as erin
/case ESC-1001 resolve re-ran the invoicing job and refunded
/case ESC-1001
"""


def console(script: str, *, as_: str, data_dir: Path, config: Path = PROJECT_CONFIG,
            env_extra: dict[str, str] | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({"ESCALATOR_DATA_DIR": str(data_dir), **(env_extra or {})})
    done = subprocess.run([*ESCALATOR, "console", "--config", str(config), "--as", as_], input=script,
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_issue_scenario_runs_end_to_end_in_the_console(tmp_path: Path) -> None:
    out = console(SCENARIO, as_="alice", data_dir=tmp_path / "data")
    # routed by rule 2 into L2's private channel, the on-call L2 person paged, the CSM told
    assert "Opened ESC-1001 in L2 Specialists (sev2)" in out
    assert "[slack G0L2PRIVATE · thread ESC-1001/L2 · private] ▣ card ESC-1001" in out
    assert "[slack DM U0CLEO] ☎ page You are paged for ESC-1001" in out
    assert "[slack DM U0HANA] ✉ ESC-1001 escalated" in out
    # nobody acknowledged: ten minutes later the next step pages the manager too
    assert "Paging Cleo Chen, Gus Grant (step 2 of 3)" in out
    assert "[slack DM U0GUS] ☎ page You are paged for ESC-1001" in out
    # the L2 person acknowledges: paging stops
    assert "You acknowledged ESC-1001; paging stopped." in out
    # up to L3 (a new thread, a pointer in the old one), then resolved
    assert "[slack G0L3PRIVATE · thread ESC-1001/L3 · private] ▣ card ESC-1001" in out
    assert "↳ Escalated to L3 Engineering by Cleo Chen" in out
    assert "ESC-1001 resolved in L3 Engineering." in out
    # /case shows the whole timeline
    timeline = out.split("Timeline:")[1]
    for action in ("Alice Adams: opened", "paged (Cleo Chen (step 1 of 3))", "notified (Hana Ito",
                   "paged (Cleo Chen, Gus Grant (step 2 of 3))", "Cleo Chen: acknowledged",
                   "Cleo Chen: escalated (L2 → L3", "Erin Ortiz: resolved (in L3"):
        assert action in timeline, action


def test_cases_survive_a_restart_of_the_embedded_redis(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = console("/escalate L1 Printer on fire\n", as_="alice", data_dir=data, config=PROJECT_CONFIG)
    assert "Opened ESC-1001" in first
    second = console("/case ESC-1001\n/escalate L1 Second problem\n", as_="ben", data_dir=data,
                     config=PROJECT_CONFIG)
    assert "ESC-1001 · Printer on fire" in second and "Alice Adams: opened" in second
    assert "Opened ESC-1002" in second
    assert (data / "escalator.rdb").exists() or any(data.glob("*.aof*")) or any(data.glob("**/*.aof"))


def test_wrong_input_gets_usage_only_for_the_caller(tmp_path: Path) -> None:
    out = console("/escalate L9 sev2 broken\n/case\n/frobnicate\n", as_="alice", data_dir=tmp_path / "d")
    assert "'L9' is not a known tier or severity" in out
    assert "Usage: /escalate" in out and "Name the case, e.g. /case ESC-1042." in out
    assert "Escalator commands:" in out
    assert "[slack" not in out  # nothing was posted anywhere


def test_a_broken_config_stops_the_console_with_every_problem_named(tmp_path: Path) -> None:
    bad = tmp_path / "escalator.yaml"
    bad.write_text(EXAMPLE_CONFIG.read_text().replace("policy: l2-default", "policy: l9-default"))
    done = subprocess.run([*ESCALATOR, "check-config", "--config", str(bad)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert f"{bad}: tiers[2].policy: unknown policy 'l9-default' (known: l2-default, l3-default)" in done.stderr
