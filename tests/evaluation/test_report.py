"""A report is a list of sections: the protocol, a new section added to the world comparison's list, and the
compare command's rules (each refused before any work, with the message the CLI prints)."""

import json

import pytest
import torch

from cosmos_sim.cli import main
from cosmos_sim.errors import CosmosSimError
from cosmos_sim.evaluation import compare as cmp
from cosmos_sim.evaluation import compare_data, compare_env
from cosmos_sim.evaluation.report import Context, render, run_sections, write_report

from assets.build import TINY_PUSH


class Part:
    """A section that records what it saw of the report."""

    def __init__(self, key, applies=True, text=None, timing=None):
        self.key, self._applies, self.text, self.timing = key, applies, text, timing

    def applies(self, ctx):
        return self._applies

    def run(self, ctx):
        return {"seen": list(ctx.report)}

    def markdown(self, result, report):
        return self.text if self.text is not None else f"## {self.key}\n\nsaw {', '.join(result['seen'])}\n"


def test_sections_run_in_order_into_the_report(tmp_path):
    ctx = Context(config=None, world=None, model=None, out=tmp_path)
    ctx.report["schema"] = "test/1"
    parts = [Part("a", timing="a_s"), Part("skipped", applies=False), Part("b"), Part("quiet", text="")]
    report = run_sections(ctx, parts)
    assert list(report) == ["schema", "a", "b", "quiet"]  # report.json in the list's order; what applies only
    assert report["b"] == {"seen": ["schema", "a"]}  # a section reads the parts before it
    assert list(ctx.timing) == ["a_s"]
    md = render(report, [parts[2], parts[0], parts[3]], head="# title\n", tail="end")
    assert md == "# title\n\n## b\n\nsaw schema, a\n\n## a\n\nsaw schema\n\nend"  # in the order asked; "" left out
    write_report(ctx, md)
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert (tmp_path / "report.md").read_text() == md and (tmp_path / "timing.json").is_file()


def test_a_new_measure_is_one_more_section(tmp_path, monkeypatch):
    """A section appended to the world comparison's list lands in report.json and in report.md, before the
    closing part (how to read the report, the videos)."""

    class Contacts:
        key, timing = "contacts", "contacts_s"

        def applies(self, ctx):
            return ctx.model is None  # physics only, here

        def run(self, ctx):
            return {"closed_loop_backends": sorted(ctx.report["closed_loop"]), "files": sorted(ctx.files)}

        def markdown(self, result, report):
            return "## Contacts\n\nbackends: " + ", ".join(result["closed_loop_backends"]) + "\n"

    monkeypatch.setattr(cmp, "SECTIONS", (*cmp.SECTIONS, Contacts()))
    cfg = cmp.CompareConfig(world="push", policies=("scripted:1",), backends=("mujoco", "pybullet"), episodes=1,
                            open_loop_episodes=1, horizon=2, videos=0)
    r = cmp.compare(cfg, None, tmp_path, progress=False)
    assert list(r) == ["schema", "config", "model", "open_loop", "closed_loop", "ranking", "files", "contacts"]
    assert r["contacts"]["closed_loop_backends"] == ["mujoco", "pybullet"]
    md = (tmp_path / "report.md").read_text()
    assert md.index("## Ranking") < md.index("## Contacts") < md.index("## How to read this")
    assert json.loads((tmp_path / "timing.json").read_text()).keys() >= {"open_loop_s", "closed_loop_s", "contacts_s"}
    assert md == cmp.markdown(json.loads((tmp_path / "report.json").read_text()))  # report.md from report.json


FLAGS = {"world": "push", "policies": ("ladder",), "episodes": 1, "open_loop_episodes": 1, "horizon": 2,
         "open_loop_policy": "scripted:0.75", "videos": 0, "camera": None, "seed": 0, "device": None}


@pytest.mark.parametrize("kw, match", [
    ({"model": str(TINY_PUSH), "physics_only": True}, "--physics-only compares the physics backends alone"),
    ({"data": "somewhere"}, "compare --data DIR needs --model RUN and neither --env nor --physics-only"),
    ({"data": "somewhere", "model": str(TINY_PUSH), "env": "CartPole-v1"}, "neither --env nor --physics-only"),
    ({"env": "cosmos_test/PointMass-v0"}, "compare --env needs --model RUN"),
    ({"env": "cosmos_test/PointMass-v0", "model": str(TINY_PUSH), "physics_only": True}, "compare --env needs"),
    ({"env": "cosmos_test/PointMas-v0", "model": str(TINY_PUSH)}, "close matches: cosmos_test/PointMass-v0"),
    ({"model": str(TINY_PUSH), "flags": {"world": "reach"}}, "model has 'Push', caller has 'Reach'"),
    ({"model": str(TINY_PUSH), "flags": {"policies": ("scripted", "bogus")}}, "unknown policy 'bogus'"),
    ({"physics_only": True, "flags": {"horizon": 0}}, "horizon must be >= 1"),
])
def test_compare_rules_fail_before_any_work(kw, match, tmp_path):
    from twins import pointmass

    pointmass.register()
    flags = FLAGS | kw.pop("flags", {})
    with pytest.raises(CosmosSimError, match=match):  # the CLI prints it as one line
        cmp.run_command(flags, tmp_path / "report", **kw)
    assert not (tmp_path / "report").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("mode", ["world", "data", "env"])
def test_an_unavailable_device_is_refused_in_every_mode(mode, tmp_path, capsys):
    from twins import pointmass

    pointmass.register()
    extra = {"world": [], "data": ["--data", str(tmp_path)], "env": ["--env", "cosmos_test/PointMass-v0"]}[mode]
    assert main(["compare", "--model", str(TINY_PUSH), "--device", "cuda", *extra, "--out",
                 str(tmp_path / "r")]) == 1
    assert "CUDA is not available" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_env_and_data_configs_from_the_compare_flags():
    """A world's defaults (the expert ladder, an expert's actions open loop) mean random for an env."""
    cfg = compare_env.EnvCompareConfig.from_compare_flags("CartPole-v1", None, FLAGS)
    assert cfg.policies == ("random",) and cfg.open_loop_policy == "random" and cfg.env_kwargs == "{}"
    given = FLAGS | {"policies": ("random", "explore"), "open_loop_policy": "explore"}
    cfg = compare_env.EnvCompareConfig.from_compare_flags("CartPole-v1", '{"a": 1}', given)
    assert cfg.policies == ("random", "explore") and cfg.open_loop_policy == "explore" and cfg.env_kwargs == '{"a": 1}'
    assert (cfg.episodes, cfg.open_loop_episodes, cfg.horizon) == (1, 1, 2)
    d = compare_data.DataCompareConfig.from_compare_flags(FLAGS)
    assert (d.open_loop_episodes, d.horizon, d.videos, d.seed) == (1, 2, 0, 0)
