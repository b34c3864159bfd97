"""The `cosmos-sim` command line: worlds, demo, help and one-line errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cosmos_sim import cli, video
from cosmos_sim.errors import MissingPathError
from cosmos_sim.worlds import WORLDS, get_world


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_worlds_lists_every_world_with_its_layout(capsys):
    code, out, err = run(capsys, "worlds")
    assert code == 0
    for name in WORLDS:
        w = get_world(name)
        assert f"{name.lower()}  (cosmos_sim/{name}-v0)" in out
        for entry, size in w.state_layout.entries:
            assert f"{entry}[{size}]" in out
        for a in w.action_names:
            assert a in out
        assert f"max {w.max_episode_steps} steps" in out
    assert "mujoco, pybullet" in out


def test_worlds_json(capsys):
    code, out, _ = run(capsys, "worlds", "--json")
    assert code == 0
    infos = json.loads(out)
    assert [d["name"] for d in infos] == [n.lower() for n in WORLDS]
    for d in infos:
        w = get_world(d["name"])
        assert [(e["name"], e["size"]) for e in d["state"]] == list(w.state_layout.entries)
        assert d["action"] == list(w.action_names)
        assert d["state_dim"] == w.state_dim and {"mujoco", "pybullet"} <= set(d["backends"])
    code, out, _ = run(capsys, "worlds", "--json", "Reach")
    assert [d["name"] for d in json.loads(out)] == ["reach"]


@pytest.mark.parametrize("argv", [["worlds", "pushh"],
                                  ["demo", "--physics-only", "--worlds", "pushh", "--episodes", "1"]])
def test_unknown_world_is_one_line_naming_the_choices(capsys, tmp_path, argv):
    code, out, err = run(capsys, *argv, *(["--out", str(tmp_path / "o")] if argv[0] == "demo" else []))
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cosmos-sim: error:") and "pushh" in lines[0]
    for name in WORLDS:
        assert name.lower() in lines[0]
    assert not (tmp_path / "o").exists()  # validated before any work


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["demo", "--episodes", "0"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cosmos-sim: error:") and "--episodes" in err[0]
    with pytest.raises(SystemExit) as e:
        cli.main(["no-such-command"])
    assert e.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def _command_paths(commands, prefix=()):
    for c in commands:
        yield (*prefix, c.name), c
        yield from _command_paths(c.subcommands, (*prefix, c.name))


@pytest.mark.parametrize("path", [()] + [p for p, _ in _command_paths(cli.COMMANDS)],
                         ids=lambda p: " ".join(p) or "top")
def test_help_on_every_command(capsys, path):
    with pytest.raises(SystemExit) as e:
        cli.main([*path, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: cosmos-sim")
    if path:
        cmd = dict(_command_paths(cli.COMMANDS))[path]
        assert (cmd.description or cmd.help.replace("%%", "%")).split("\n")[0] in out
    else:
        for c in cli.COMMANDS:
            assert c.name in out


def test_no_command_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 0 and "commands" in out


@pytest.mark.slow  # a fresh interpreter
def test_python_dash_m(tmp_path):
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    r = subprocess.run([sys.executable, "-m", "cosmos_sim", "worlds", "--json"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert {d["name"] for d in json.loads(r.stdout[r.stdout.index("["):])} == {n.lower() for n in WORLDS}


def test_demo_writes_side_by_side_video_and_table(capsys, tmp_path):
    out_dir = tmp_path / "demo"
    code, out, err = run(capsys, "demo", "--physics-only", "--episodes", "1", "--worlds", "reach", "--image-size", "16",
                         "--out", str(out_dir), "--no-progress")
    assert code == 0, err
    path = out_dir / "reach.mp4"
    frames = video.read_video(path)
    # Expected frame: two upscaled, labelled views side by side under a header strip, padded to even sizes.
    scale = -(-256 // 16)
    z = np.zeros((16, 16, 3), np.uint8)
    expected = video.pad_to_even(video.label(video.tile([z, z], labels=["a", "b"], scale=scale), "h")).shape
    assert frames.shape[1:] == expected
    assert frames.shape[0] >= 2
    summary = json.loads((out_dir / "physics_demo.json").read_text())
    assert summary["worlds"]["reach"]["frames"] == frames.shape[0]
    for b in ("mujoco", "pybullet"):
        assert summary["worlds"]["reach"][b]["episodes"] == 1
    assert (out_dir / "first_frames.png").is_file()
    assert "reach" in out and "MuJoCo success" in out and "PyBullet success" in out and str(path) in out
    assert sorted(p.name for p in out_dir.iterdir()) == ["first_frames.png", "physics_demo.json", "reach.mp4"]


def test_nested_commands_register_from_the_table(capsys, monkeypatch):
    seen = {}

    def add_info_args(p):
        p.add_argument("--path", required=True)

    def cmd_info(args):
        seen["path"] = args.path
        return 0

    def cmd_fail(args):
        raise MissingPathError("no such file or directory: missing.shard")

    group = cli.Command("fakegroup", "inspect datasets", subcommands=(
        cli.Command("info", "show a dataset", cmd_info, (add_info_args,)),
        cli.Command("verify", "check a dataset", cmd_fail)))
    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, group])
    assert cli.main(["fakegroup", "info", "--path", "x"]) == 0 and seen == {"path": "x"}
    capsys.readouterr()
    assert cli.main(["fakegroup"]) != 0  # a group without its subcommand prints the group's help
    assert "info" in capsys.readouterr().out
    code, _, err = run(capsys, "fakegroup", "verify")
    assert code == 1 and err.strip() == "cosmos-sim: error: no such file or directory: missing.shard"


def test_help_prints_percent_signs_once(capsys):
    from cosmos_sim.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    assert "95%" in out and "95%%" not in out


def test_only_the_packages_own_errors_are_one_line(capsys):
    """A CosmosSimError (a user error) prints one line; any other exception is a bug and keeps its traceback."""
    from cosmos_sim.cli_support import Command, run
    from cosmos_sim.errors import InputError

    for exc in (InputError("bad --thing"), ValueError("internal"), KeyError("internal")):
        def boom(args, exc=exc):
            raise exc

        commands = [Command("boom", "raises", boom)]
        if isinstance(exc, InputError):
            assert run(commands, ["boom"]) == 1
            assert capsys.readouterr().err.strip() == "cosmos-sim: error: bad --thing"
        else:
            with pytest.raises(type(exc)):
                run(commands, ["boom"])


def test_train_help_shows_the_state_model_config_defaults(capsys):
    """The --state-* flags come from StateModelConfig's fields (its defaults and help, not a second copy), beside
    the trainer's like-named ones (--steps), and build the config back."""
    from dataclasses import fields

    from cosmos_sim.cli_support import build_parser, config_from
    from cosmos_sim.dynamics.train import StateModelConfig

    for path in (["train"], ["train", "dynamics"]):
        with pytest.raises(SystemExit):
            cli.main([*path, "--help"])
        text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, at hyphens too
        for f in fields(StateModelConfig):
            if f.name in cli.STATE_FLAGS:
                shown = "none" if f.default is None else f.default
                want = "".join(f"{f.metadata['help']} (default: {shown})".split())
                assert cli.STATE_FLAGS[f.name] in text and want in text, (path, f.name)
    args = build_parser(cli.COMMANDS).parse_args(["train", "dynamics", "--data", "d", "--out", "o", "--tokenizer",
                                                  "t", "--steps", "7", "--state-steps", "30", "--state-model",
                                                  "objects", "--task-steps", "5"])
    state = config_from(cli.STATE, args, cli.STATE_FLAGS, flag_dests=True)
    assert state == StateModelConfig(model="objects", steps=30, task_steps=5) and args.steps == 7


@pytest.mark.parametrize("argv", [["--out", "R"], ["--data", "D", "--out", "R", "--state-model", "gnn"],
                                  ["--data", "D", "--out", "R", "--state-members", "0"]])
def test_train_checks_its_flags_before_any_work(capsys, tmp_path, argv):
    code, _, err = run(capsys, "train", *[str(tmp_path / a) if a in "DR" else a for a in argv])
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    if "--data" not in argv:
        assert err.strip() == ("cosmos-sim: error: train needs --data DIR and --out RUN (or a subcommand: train "
                               "tokenizer|dynamics)")
    assert not (tmp_path / "R").exists()
