"""The command line as a user meets it: one line and a documented exit code for every mistake."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy.engine import make_url

from connectors.sim.base import VendorSimulator
from connectors.sim.fleet import simulator_fleet
from graph.store import GraphStore
from syncd.boundary import explain, report
from tests.syncd.processes import start_syncd
from tests.syncd.test_daemon import free_port
from tests.syncd.test_engine import ENV, SECRETS, TOKEN, person, serving, write_feed

SYNCD = [sys.executable, "-m", "syncd.cli.main"]


def run(
    *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run the syncd command line in a subprocess, without $SYNCD_CONFIG from outside."""
    environ = {**os.environ, **ENV, **(env or {})}
    if env is None or "SYNCD_CONFIG" not in env:
        environ.pop("SYNCD_CONFIG", None)
    return subprocess.run(
        [*prefix, *SYNCD, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=environ,
    )


async def syncd(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line without blocking the simulators on this event loop."""
    return await anyio.to_thread.run_sync(lambda: run(*args))


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failing command printed on stderr (fails if it printed more)."""
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def write_config(
    path: Path,
    *,
    database: str,
    feed: Path | None = None,
    urls: dict[str, str] | None = None,
    settings: dict[str, str] | None = None,
    extra: str = "",
) -> Path:
    """A TOML config: a database, maybe an HR file, connectors at the given URLs."""
    lines = [f'[database]\nurl = "{database}"', "[push]\nbase_delay = 0.05\nmax_delay = 0.2"]
    if feed is not None:
        lines.append(f'[authority]\nhr_feed = "{feed}"')
    for name, url in (urls or {}).items():
        secrets = ", ".join(f'{key} = "{value}"' for key, value in SECRETS[name].items())
        lines.append(
            f'[connectors.{name}]\nvendor = "{name}"\nbase_url = "{url}"\nrate = 100\n'
            f"secrets = {{ {secrets} }}\nsettings = {{ {(settings or {}).get(name, '')} }}\n"
            'provision = { domains = ["corp.example"] }'
        )
    path.write_text("\n\n".join(lines) + "\n" + extra)
    return path


def sqlite_config(folder: Path, **options: Any) -> Path:
    """`folder/syncd.toml` on the SQLite file `folder/g.db`; the options are write_config's."""
    return write_config(folder / "syncd.toml", database=f"sqlite:///{folder / 'g.db'}", **options)


def fed_config(folder: Path, rows: list[dict[str, str]], **options: Any) -> Path:
    """sqlite_config with an HR export of these rows at `folder/hr.csv`."""
    feed = folder / "hr.csv"
    write_feed(feed, rows)
    return sqlite_config(folder, feed=feed, **options)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port something else is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_version_from_the_installed_command() -> None:
    command = shutil.which("syncd", path=str(Path(sys.executable).parent))
    assert command is not None
    result = subprocess.run([command, "--version"], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout) == (0, "syncd 0.1.0\n")


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "g.db"}"\n')
    # A pipe whose reader has already gone: the first write fails with EPIPE.
    read, write = os.pipe()
    os.close(read)
    result = subprocess.run(
        [*SYNCD, "status", "--json", "--config", str(config)],
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    os.close(write)
    assert result.returncode == 141, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["run", "--log-level", "verbose"], "'warning'"),
        (["sim", "example", "--port", "99999"], "0 to 65535"),
        (["sim", "example", "--users", "-5"], "--users"),
        (["sim", "example", "--rate", "0"], "--rate"),
        (["demo", "--cycles", "-1"], "--cycles"),
        (["demo", "--port", "70000"], "0 to 65535"),
        (["sim", "example", "--latency-ms", "-1"], "--latency-ms"),
        (["once", "--no-such-option"], "--no-such-option"),
        (["db", "upgrade", "--database", "sqlite:///x.db"], "--database"),
        (["launch"], "invalid choice"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], says: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert says in one_line(result)


def test_config_problems_exit_78_naming_the_path(tmp_path: Path) -> None:
    default = run("status")
    assert default.returncode == 78
    assert "/etc/syncd/syncd.toml" in one_line(default) and "$SYNCD_CONFIG" in default.stderr
    missing = tmp_path / "missing.toml"
    from_env = run("once", env={"SYNCD_CONFIG": str(missing)})
    assert from_env.returncode == 78 and str(missing) in one_line(from_env)
    directory = run("plan", "--config", str(tmp_path))
    assert directory.returncode == 78 and str(tmp_path) in one_line(directory)
    garbled = tmp_path / "garbled.toml"
    garbled.write_text("[database]\nurl = \n")
    not_toml = run("db", "upgrade", "--config", str(garbled))
    assert not_toml.returncode == 78 and "line 2, column 7" in one_line(not_toml)
    mysql = write_config(tmp_path / "mysql.toml", database="mysql://root:hunter2@db/x")
    wrong_url = run("status", "--config", str(mysql))
    assert wrong_url.returncode == 78 and "database.url" in one_line(wrong_url)
    assert "hunter2" not in wrong_url.stderr


def test_config_from_the_environment_and_db_upgrade_from_the_config(tmp_path: Path) -> None:
    config = sqlite_config(tmp_path)
    upgraded = run("db", "upgrade", env={"SYNCD_CONFIG": str(config)})
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout == f"database is up to date: sqlite:///{tmp_path / 'g.db'}\n"
    status = run("status", "--json", env={"SYNCD_CONFIG": str(config)})
    assert status.returncode == 0 and json.loads(status.stdout)["connectors"] == {}


@pytest.mark.parametrize("command", ["once", "plan"])
@pytest.mark.parametrize("content", [None, b"", "email\nrené@corp.example\n".encode("latin-1")])
def test_an_unusable_hr_file_is_one_line_and_65(
    tmp_path: Path, command: str, content: bytes | None
) -> None:
    feed = tmp_path / "hr.csv"
    if content is not None:
        feed.write_bytes(content)
    config = sqlite_config(tmp_path, feed=feed)
    result = run(command, "--config", str(config))
    assert result.returncode == 65
    assert str(feed) in one_line(result)


def test_a_refused_feed_is_one_line_and_1(tmp_path: Path) -> None:
    feed = tmp_path / "hr.csv"
    write_feed(feed, [person(i) for i in range(10)])
    config = sqlite_config(tmp_path, feed=feed)
    assert run("once", "--config", str(config)).returncode == 0
    write_feed(feed, [person(0)])  # nine of ten gone at once: refused
    for command in ("plan", "once"):
        result = run(command, "--config", str(config), "--log-level", "error")
        assert result.returncode == 1
        assert "refused" in one_line(result)


def _postgres(database: str) -> str:
    base = os.environ.get("SYNCD_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("needs SYNCD_TEST_POSTGRES_URL")
    return (
        make_url(base)
        .set(password="hunter2-not-shown", database=database)
        .render_as_string(hide_password=False)
    )


@pytest.mark.parametrize("where", ["no_database", "refused"])
def test_an_unreachable_postgres_is_69_with_the_password_masked(tmp_path: Path, where: str) -> None:
    url = _postgres("syncd_f_does_not_exist")
    if where == "refused":
        url = make_url(url).set(host="127.0.0.1", port=free_port()).render_as_string(False)
    config = write_config(tmp_path / "syncd.toml", database=url)
    for args in (["status"], ["db", "upgrade"], ["once"]):
        result = run(*args, "--config", str(config))
        line = one_line(result)
        assert result.returncode == 69, result.stderr
        assert "hunter2" not in result.stderr
        assert make_url(url).render_as_string(hide_password=True) in line


def test_a_sqlite_file_that_cannot_be_created_is_69_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "g.db"
    config = write_config(tmp_path / "missing.toml", database=f"sqlite:///{missing}")
    result = run("once", "--config", str(config))
    assert result.returncode == 69 and str(missing.parent) in one_line(result)
    debug = run("once", "--config", str(config), env={"SYNCD_DEBUG": "1"})
    assert debug.returncode == 69 and "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == one_line(result)

    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    config = write_config(tmp_path / "ro.toml", database=f"sqlite:///{read_only / 'g.db'}")
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:  # root writes anywhere unless it gives up overriding permissions
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        prefix = (setpriv, "--bounding-set=-dac_override,-dac_read_search", "--")
    result = run("status", "--config", str(config), prefix=prefix)
    assert result.returncode == 69 and str(read_only / "g.db") in one_line(result)
    assert not (read_only / "g.db").exists()


async def test_the_sqlite_file_and_its_wal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    store = await GraphStore.open(f"sqlite:///{path}")
    try:
        await store.finish_listing(await store.begin_listing("influitive"), complete=False)
        modes = {
            suffix: stat.S_IMODE((tmp_path / f"g.db{suffix}").stat().st_mode)
            for suffix in ("", "-wal", "-shm")
        }
        hidden = [
            engine.sync_engine.hide_parameters for engine in (store.db.writer, store.db.reader)
        ]
    finally:
        await store.close()
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
    assert hidden == [True, True]  # SQL errors and logs never show parameters (emails)


def test_a_port_in_use_is_69(tmp_path: Path, held_port: int) -> None:
    sim_run = run("sim", "example", "--port", str(held_port))
    assert (
        sim_run.returncode == 69
        and f"127.0.0.1:{held_port}: Address already in use" in one_line(sim_run)
    )
    config = sqlite_config(
        tmp_path,
        extra=f"\n[health]\nport = {held_port}\n",
    )
    daemon = run("run", "--config", str(config), "--log-level", "error")
    assert daemon.returncode == 69 and f":{held_port}" in one_line(daemon)
    demo = run("demo", "--cycles", "0", "--port", str(held_port))
    assert demo.returncode == 69 and f":{held_port}" in one_line(demo)


def test_the_demo_takes_a_free_port_when_8080_is_taken() -> None:
    with socket.socket() as holder:
        try:
            holder.bind(("127.0.0.1", 8080))
            holder.listen()
        except OSError:
            pass  # somebody else holds it: taken all the same
        result = run("demo", "--cycles", "0")
    assert result.returncode == 0, result.stderr
    assert "port 8080 is taken" in result.stdout
    assert "health endpoint: http://127.0.0.1:" in result.stdout
    assert "http://127.0.0.1:8080/" not in result.stdout


async def test_arguments_that_name_nothing_are_usage_errors(tmp_path: Path) -> None:
    async with simulator_fleet(("influitive", "userflow"), token=TOKEN) as fleet:
        sims = fleet.simulators
        config = sqlite_config(
            tmp_path,
            urls=fleet.urls,
        )
        for args in (
            ["approve", "--connector", "nope"],
            ["reject", "--connector", "nope"],
            ["once", "--connector", "nope"],
            ["link", "nope", "1", "person1@corp.example"],
            ["unlink", "nope", "1"],
        ):
            result = await syncd(*args, "--config", str(config))
            assert result.returncode == 2, (args, result.stderr)
            assert "known: influitive, userflow" in one_line(result)
        for args in (["person", "not-an-email"], ["link", "influitive", "1", "a@@b"]):
            result = await syncd(*args, "--config", str(config))
            assert result.returncode == 2 and "not an email address" in one_line(result)
        assert sum(sum(sim.stats.requests.values()) for sim in sims.values()) == 0


async def once_json(
    folder: Path, feed: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, VendorSimulator]]:
    """Run `syncd once --json ARGS` on `folder`'s config against Influitive and TI simulators."""
    async with simulator_fleet(("influitive", "thought_industries"), token=TOKEN) as fleet:
        config = sqlite_config(folder, feed=feed, urls=fleet.urls)
        result = await syncd("once", "--config", str(config), "--json", *args)
    return result, fleet.simulators


async def test_once_json_is_one_document_while_it_logs_and_runs_one_connector(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "hr.csv"
    write_feed(feed, [person(1), person(2, email="not-an-email"), person(3)])
    result, _ = await once_json(tmp_path, feed, "--log-level", "debug")
    # One bad row in three is past max_invalid_share: the feed is refused, the cycle runs.
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)  # one document: the warnings went to stderr
    assert summary["authority"]["skipped_rows"] == 1
    assert summary["authority"]["refused"]
    assert list(summary["connectors"]) == ["influitive", "thought_industries"]
    assert "authority.row_skipped" in result.stderr
    # Debug logs hold no SQL parameters or rows: no email reaches them.
    assert "@corp.example" not in result.stderr

    single = tmp_path / "single"
    single.mkdir()
    write_feed(feed, [person(1), person(3)])
    result, sims = await once_json(single, feed, "--connector", "influitive")
    assert result.returncode == 0, result.stderr
    assert list(json.loads(result.stdout)["connectors"]) == ["influitive"]
    assert sum(sims["influitive"].stats.requests.values()) > 0
    assert not sims["thought_industries"].stats.requests


async def test_once_exits_1_when_an_operation_died(tmp_path: Path) -> None:
    async with serving("userflow") as (_, url):
        # No id_attribute: Userflow cannot create the account.
        config = fed_config(tmp_path, [person(1)], urls={"userflow": url})
        config.write_text(config.read_text().replace("max_delay = 0.2", "max_attempts = 1"))
        result = await syncd("once", "--config", str(config), "--json")
    assert json.loads(result.stdout)["connectors"]["userflow"]["dead"] == 1
    assert result.returncode == 1
    assert "userflow: 1 operation(s) dead" in result.stderr


async def test_once_keeps_the_rate_it_learned_from_429s(tmp_path: Path) -> None:
    async with serving("thought_industries") as (sim, url):
        sim.settings.rate = 4.0
        sim.settings.burst = 1.0
        config = fed_config(
            tmp_path, [person(i) for i in range(12)], urls={"thought_industries": url}
        )
        result = await syncd("once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert sim.stats.throttled > 0
    with sqlite3.connect(tmp_path / "g.db") as conn:
        (learned,) = conn.execute(
            "SELECT learned_rate FROM connector_state WHERE connector = 'thought_industries'"
        ).fetchone()
    assert learned is not None and learned < 100


@pytest.mark.parametrize(
    ("stop", "code", "last_line"),
    [
        (signal.SIGINT, 130, "syncd: interrupted"),
        (signal.SIGTERM, 143, "syncd once: stopped by SIGTERM"),
    ],
)
async def test_ctrl_c_or_sigterm_during_once_leaves_nothing_in_flight(
    tmp_path: Path, stop: signal.Signals, code: int, last_line: str
) -> None:
    async with serving("thought_industries") as (sim, url):
        sim.settings.latency_ms = 300  # slow writes, so the interrupt lands mid-push
        config = fed_config(
            tmp_path, [person(i) for i in range(30)], urls={"thought_industries": url}
        )
        process = start_syncd("once", config, stdout=subprocess.PIPE)
        with anyio.fail_after(60):
            while len(sim.users) < 3:  # noqa: ASYNC110  (another process is writing)
                await anyio.sleep(0.02)
        process.send_signal(stop)
        _, stderr = await anyio.to_thread.run_sync(lambda: process.communicate(timeout=60))
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == last_line
    with sqlite3.connect(tmp_path / "g.db") as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM operation GROUP BY state"))
    assert "in_flight" not in states and states.get("pending", 0) > 0


def test_an_unexpected_error_is_one_line_and_70_with_the_traceback_on_debug() -> None:
    try:
        raise ExceptionGroup("task group", [RuntimeError("boom\nsecond line")])
    except ExceptionGroup as error:
        code, line = explain(error)
        assert code == 70
        assert line == (
            "syncd: internal error: RuntimeError: boom second line "
            "(run with --debug for the traceback)"
        )

        sink = io.StringIO()
        assert report(error, debug=True, stream=sink) == 70
        assert "Traceback" in sink.getvalue() and sink.getvalue().endswith(line + "\n")
