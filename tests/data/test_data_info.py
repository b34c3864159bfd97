"""`cosmos-sim data info`: one line per collection policy, with its share of the episodes and its success."""

import json

from cosmos_sim.cli import main
from cosmos_sim.data import CollectConfig, collect


def test_info_prints_one_line_per_policy(tmp_path, capsys):
    collect(CollectConfig(world="push", policy="scripted,random", image_size=32, episodes=4), tmp_path / "d",
            progress=False)
    assert main(["data", "info", str(tmp_path / "d"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert sum(r["policies"].values()) == 4 and set(r["policy_success"]) == set(r["policies"])
    assert main(["data", "info", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    table = out[out.index("policy  "):].splitlines()
    assert table[0].split() == ["policy", "episodes", "share", "success"] and len(table) == 2 + len(r["policies"])
    for line, (name, n) in zip(table[2:], sorted(r["policies"].items(), key=lambda kv: (-kv[1], kv[0])), strict=True):
        assert line.split()[:3] == [name, str(n), f"{100 * n / 4:.0f}%"]
        assert line.split()[3] == f"{100 * r['policy_success'][name]:.0f}%"
    assert max(len(line) for line in out.splitlines()) <= 120  # no one long line of every policy


def test_info_of_a_multi_view_dataset_draws_each_view(tmp_path, capsys):
    collect(CollectConfig(world="push", policy="random", image_size=32, episodes=2, views=2,
                          camera="random"), tmp_path / "d",
            progress=False)
    assert main(["data", "info", str(tmp_path / "d"), "--thumbnails", str(tmp_path / "t.png")]) == 0
    import imageio.v3 as iio

    thumbs = iio.imread(tmp_path / "t.png")
    assert thumbs.shape[1] > 3.5 * thumbs.shape[0]  # two episodes in a row, each two views wide


def test_episodes_record_the_simulator_version(tmp_path):
    import mujoco

    from cosmos_sim.data import EpisodeDataset

    collect(CollectConfig(world="push", policy="random", image_size=32, episodes=1), tmp_path / "d", progress=False)
    assert EpisodeDataset(tmp_path / "d")[0]["metadata"]["simulator"] == {"mujoco": mujoco.__version__}
