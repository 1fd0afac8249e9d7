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


def test_the_banner_says_it_is_a_sandbox_and_finishes_its_sentences(tmp_path: Path) -> None:
    out = console(":quit\n", as_="alice", data_dir=tmp_path / "d")
    banner = out.splitlines()[:3]
    assert banner[0] == ("Escalator console: you are Alice Adams. Type what you would type in chat, e.g. "
                         "/escalate L2 sev2 customer:globex category:billing Charged twice")
    assert banner[1] == ("Console sandbox: cases here are never posted to Slack or Teams; "
                         "data in escalator-console.")
    assert all(line.rstrip().endswith((".", ")", "twice")) for line in banner)


def test_console_cases_never_wait_in_the_outbox_serve_delivers_from(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = console("/escalate L1 sev2 Printer on fire\n", as_="alice", data_dir=data)
    assert "Opened ESC-1001" in out and "[slack C0L1 · thread ESC-1001/L1] ▣ card" in out
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["ESCALATOR_DATA_DIR"] = str(data)
    status = subprocess.run([*ESCALATOR, "outbox", "status", "--config", str(PROJECT_CONFIG)], capture_output=True,
                            text=True, env=env, timeout=120, check=True)
    assert "slack: 0 pending, 0 dead" in status.stdout and "teams: 0 pending, 0 dead" in status.stdout


def test_advancing_an_hour_fires_every_timer_due_in_it_each_at_its_own_time(tmp_path: Path) -> None:
    out = console("/escalate sev2 customer:globex category:billing Charged twice\n:advance 1h\n/case ESC-1001\n",
                  as_="alice", data_dir=tmp_path / "d")
    steps = ["SLA warning: acknowledge due in", "Paging Cleo Chen, Gus Grant (step 2 of 3)",
             "SLA breached: acknowledge target of 10m missed", "Paging the whole channel (step 3 of 3)",
             "Paging Cleo Chen (step 1 of 3, round 2)", "Paging the whole channel (step 3 of 3, round 2)"]
    where = [out.index(step) for step in steps]
    assert where == sorted(where)
    assert "... 10m later" in out and "... 25m later" in out and "... 1h later, now" in out
    timeline = out.split("Timeline:")[1].splitlines()
    opened = next(line for line in timeline if "opened" in line)
    step2 = next(line for line in timeline if "(step 2 of 3))" in line)
    step3 = next(line for line in timeline if "(step 3 of 3))" in line)
    minute = lambda line: int(line.split(":")[1][:2]) + 60 * int(line.split(":")[0][-2:])  # noqa: E731
    assert (minute(step2) - minute(opened)) % 1440 == 10 and (minute(step3) - minute(opened)) % 1440 == 25


def test_an_unknown_console_command_says_so(tmp_path: Path) -> None:
    out = console(":frob\n:help\n", as_="alice", data_dir=tmp_path / "d")
    assert "unknown console command ':frob' (try :help)" in out
    assert ":advance 10m" in out and ":as PERSON" in out


def test_a_mistyped_command_is_named_before_the_help(tmp_path: Path) -> None:
    out = console("/esclate L2 checkout broken\n", as_="alice", data_dir=tmp_path / "d")
    assert "Unknown command 'esclate' — did you mean escalate?" in out
    assert out.index("Unknown command 'esclate'") < out.index("Escalator commands:")


class Terminal:
    """The console on a pseudo-terminal, as a person runs it: prompt, line editing, Ctrl-C, Ctrl-D."""

    def __init__(self, data_dir: Path) -> None:
        import pty

        self.master, slave = pty.openpty()
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env.update({"ESCALATOR_DATA_DIR": str(data_dir), "TERM": "dumb"})
        self.proc = subprocess.Popen([*ESCALATOR, "console", "--config", str(PROJECT_CONFIG), "--as", "alice"],
                                     stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, *, start: int = 0, wait_s: float = 60) -> str:
        """Wait for `text` to appear at or after position `start` of what the terminal showed."""
        import select
        import time

        deadline = time.monotonic() + wait_s
        while text not in self.seen[start:] and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if ready:
                try:
                    self.seen += os.read(self.master, 65536).decode(errors="replace")
                except OSError:
                    break
        assert text in self.seen[start:], self.seen
        return self.seen

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def exit_status(self) -> int:
        """Wait for the exit, reading what it prints (a terminal that is not read blocks its writer)."""
        import select
        import time

        deadline = time.monotonic() + 60
        try:
            while self.proc.poll() is None and time.monotonic() < deadline:
                ready, _, _ = select.select([self.master], [], [], 0.2)
                if ready:
                    try:
                        self.seen += os.read(self.master, 65536).decode(errors="replace")
                    except OSError:
                        time.sleep(0.1)
            return self.proc.wait(timeout=5)
        finally:
            os.close(self.master)


def test_the_prompt_shows_who_you_are_keeps_a_history_and_ctrl_d_leaves_with_status_0(tmp_path: Path) -> None:
    term = Terminal(tmp_path / "d")
    term.expect("Alice Adams> ")
    term.type(":as ben\r")
    term.expect("Ben Brooks> ")
    mark = len(term.seen)
    term.type("/oncall L2\r")
    term.expect("On call now", start=mark)
    mark = term.seen.index("On call now", mark)
    term.expect("Ben Brooks> ", start=mark)  # type only at the prompt, as a person does
    mark = len(term.seen)
    term.type("\x10\r")  # Ctrl-P: the previous line from the history (readline), run again
    term.expect("On call now", start=mark)
    term.expect("Ben Brooks> ", start=term.seen.index("On call now", mark))
    term.type("\x04")  # Ctrl-D
    assert term.exit_status() == 0
    assert "Traceback" not in term.seen


def test_ctrl_c_at_the_prompt_leaves_cleanly_with_status_0(tmp_path: Path) -> None:
    import signal

    term = Terminal(tmp_path / "d")
    term.expect("Alice Adams> ")
    os.killpg(term.proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole group
    assert term.exit_status() == 0
    assert "Traceback" not in term.seen and "KeyboardInterrupt" not in term.seen
CRISIS = """\
/escalate sev2 customer:globex checkout fails for EU cards
:as erin
/crisis declare sev1 component:checkout Checkout is down
/crisis INC-1 role communications hana
:advance 31m
/crisis INC-1 update identified The payment gateway rejects EU cards
/crisis INC-1 resolve Checkout works again --resolve-cases
/crisis INC-1 report
"""


def test_crisis_mode_runs_in_the_console_and_advancing_31_minutes_shows_the_update_reminder(tmp_path: Path) -> None:
    out = console(CRISIS, as_="alice", data_dir=tmp_path / "data", env_extra={"TMPDIR": str(tmp_path)})
    assert "Declared INC-1 (sev1); you are the commander. Linked 1 open case." in out
    assert "[slack C0STATUS · thread incident:INC-1] ▣ card INC-1 · Checkout is down" in out
    assert "[slack C0GLOBEXSHARED] ✎ Service status: Investigating" in out
    reminder = out.split("... 30m later")[1]  # :advance 31m fires the reminder at its own time, 30m
    assert "↳ Status update due now for INC-1" in reminder and "@ Hana Ito" in reminder
    assert "Update 1 of INC-1 posted (Identified)" in out
    assert "INC-1 resolved; the final update went out" in out and "Resolved 1 linked case" in out
    assert "Time to resolve: 31m" in out.split("/crisis INC-1 report")[-1]
    # The report as a Markdown file where Slack would get it: the console writes it and names it.
    written = [line.split("file written to ", 1)[1].strip() for line in out.splitlines() if "file written to" in line]
    assert len(written) == 2 and all(Path(w).name == "INC-1-report.md" for w in written)  # at resolve, on request
    assert "[slack C0STATUS] 📎 Post-incident report: INC-1" in out
    report = Path(written[-1]).read_text(encoding="utf-8")
    assert report.startswith("# INC-1 · Checkout is down") and "- Time to resolve: 31m" in report
    assert "## Timeline" in report and "Erin Ortiz: resolved (Checkout works again)" in report
def test_the_console_prints_a_digest_and_writes_its_chart_to_a_file_it_names(tmp_path: Path) -> None:
    script = "/escalate L1 sev2 Card declined at checkout\n:as gus\n/digest since:7d\n"
    out = console(script, as_="alice", data_dir=tmp_path / "data")
    assert "[slack DM U0GUS] ✉ Digest daily-support" in out
    assert "     L1: opened 1 (sev2 1), resolved 0, open now 1" in out
    written = [line.split("file written to ", 1)[1].strip() for line in out.splitlines() if "file written to" in line]
    assert written and Path(written[0]).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
