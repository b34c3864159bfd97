"""The data and training commands, end to end on tiny sizes."""

import json

import pytest

from cosmos_sim.cli import main

from margins import above

pytestmark = pytest.mark.slow  # trains tokenizers and dynamics


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "push"
    assert main(["collect", "--world", "push", "--episodes", "6", "--image-size", "32", "--skill", "0.3:1",
                 "--camera", "random", "--out", str(out)]) == 0
    return out


def test_collect_info_verify_curate(dataset, tmp_path, capsys):
    assert main(["data", "info", str(dataset), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["episodes"] == 6 and report["world"] == "Push" and report["cameras"] == {"random": 6}
    assert (dataset / "thumbnails.png").is_file()
    assert main(["data", "verify", str(dataset)]) == 0
    assert main(["data", "curate", str(dataset), "--out", str(tmp_path / "view")]) == 0
    assert "kept" in capsys.readouterr().out
    # resuming with more episodes adds only the new seeds
    assert main(["collect", "--world", "push", "--episodes", "7", "--image-size", "32", "--skill", "0.3:1",
                 "--camera", "random", "--out", str(dataset)]) == 0
    assert "7 episodes" in capsys.readouterr().out


def test_errors_are_one_line(dataset, tmp_path, capsys):
    assert main(["collect", "--world", "reach", "--episodes", "1", "--image-size", "32", "--out", str(dataset)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "world=Push" in err and "world=Reach" in err
    assert main(["collect", "--world", "push", "--episodes", "1", "--policy", "genius", "--out",
                 str(tmp_path / "x")]) == 1
    assert "scripted" in capsys.readouterr().err
    assert main(["data", "verify", str(tmp_path / "nothing")]) == 1
    assert main(["train", "tokenizer", "--data", str(dataset), "--out", str(tmp_path / "t"), "--preset", "cv99"]) == 1
    assert "cv8" in capsys.readouterr().err


def test_train_tokenizer_improves_and_resumes(dataset, tmp_path, capsys):
    run = tmp_path / "tok"
    args = ["train", "tokenizer", "--data", str(dataset), "--out", str(run), "--preset", "tiny", "--batch-size", "4",
            "--lr", "3e-3", "--eval-every", "10"]
    assert main([*args, "--steps", "40"]) == 0
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "eval" in line]
    above("PSNR gain dB", evals[-1]["eval"]["psnr"] - evals[0]["eval"]["psnr"], 1.0)
    assert list(run.glob("recon_step*.png"))
    assert main([*args, "--steps", "50", "--resume"]) == 0
    assert (run / "checkpoints" / "step-00000050.safetensors").is_file()


def test_time_schedule_needs_minutes_and_reaches_the_config(dataset, tmp_path, capsys):
    args = ["train", "tokenizer", "--data", str(dataset), "--out", str(tmp_path / "t"), "--preset", "tiny",
            "--batch-size", "4", "--steps", "3", "--time-schedule"]
    assert main(args) == 1
    assert "--minutes" in capsys.readouterr().err
    assert main([*args, "--minutes", "5"]) == 0
    train_config = json.loads((tmp_path / "t" / "config.json").read_text())["train_config"]
    assert train_config["schedule_by_time"] and train_config["time_limit_s"] == 300


def test_train_dynamics_cli_takes_state_steps(dataset, tmp_path):
    tok, dyn = tmp_path / "tok", tmp_path / "dyn"
    assert main(["train", "tokenizer", "--data", str(dataset), "--out", str(tok), "--preset", "tiny",
                 "--batch-size", "4", "--steps", "5"]) == 0
    assert main(["train", "dynamics", "--data", str(dataset), "--tokenizer", str(tok), "--out", str(dyn),
                 "--preset", "tiny", "--batch-size", "4", "--steps", "5", "--state-steps", "30"]) == 0
    assert json.loads((dyn / "result.json").read_text())["state_steps"] == 30
    assert (dyn / "world_model.safetensors").is_file()


def test_train_help_shows_the_train_config_defaults(capsys):
    """The flags come from TrainConfig's fields: its defaults, not a second copy."""
    from dataclasses import fields

    from cosmos_sim.cli import TRAIN_FLAGS
    from cosmos_sim.training import TrainConfig

    for path in (["train"], ["train", "tokenizer"], ["train", "dynamics"]):
        with pytest.raises(SystemExit):
            main([*path, "--help"])
        text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, at hyphens too
        for f in fields(TrainConfig):
            if f.name in TRAIN_FLAGS:
                flag, scale = f.metadata["flag"] or ("--" + f.name.replace("_", "-"), None)
                shown = f"{f.default / scale:g}" if scale else f.default
                want = "".join(f"{f.metadata['help']} (default: {shown})".split())
                assert flag in text and want in text, (path, flag)
