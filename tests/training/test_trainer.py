import json
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cosmos_sim.errors import CheckpointError, ConfigMismatchError, TrainingError
from cosmos_sim.training import TrainConfig, Trainer, lr_at, read_checkpoint, write_checkpoint

from training.toy import ToyData, ToyModel

CFG = TrainConfig(steps=12, batch_size=8, lr=1e-2, warmup_steps=3, checkpoint_every=5, keep_last=10, log_every=1,
                  deterministic=True)


def trainer(out, cfg=CFG, model=None, config=None):
    torch.manual_seed(0)
    return Trainer(model or ToyModel(), ToyData(), cfg, out, kind="toy", model_config=config or {"width": 16},
                   progress=False)


@pytest.mark.slow  # trains
def test_resume_is_exact(tmp_path):
    straight = trainer(tmp_path / "a")
    straight.fit()
    resumed_dir = tmp_path / "b"
    (resumed_dir / "checkpoints").mkdir(parents=True)
    ckpt = tmp_path / "a" / "checkpoints" / "step-00000005.safetensors"
    (resumed_dir / "checkpoints" / ckpt.name).write_bytes(ckpt.read_bytes())
    again = trainer(resumed_dir)
    again.fit(resume=True)
    assert again.step == straight.step == 12
    for (n, p), (_, q) in zip(straight.model.named_parameters(), again.model.named_parameters(), strict=True):
        assert torch.equal(p, q), n
    for p, q in zip(straight.ema.parameters(), again.ema.parameters(), strict=True):
        assert torch.equal(p, q)
    sa, sb = straight.opt.state_dict()["state"], again.opt.state_dict()["state"]
    for k in sa:
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(sa[k][key], sb[k][key])
    steps = [json.loads(line)["step"] for line in (resumed_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(6, 13))


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(CFG, s) for s in range(CFG.steps)]
    assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(CFG.lr)
    assert lrs[-1] < lrs[3] and lrs[-1] >= CFG.lr * CFG.min_lr_ratio


@pytest.mark.slow  # trains
def test_keeps_last_k(tmp_path):
    t = trainer(tmp_path, TrainConfig(steps=10, batch_size=8, checkpoint_every=2, keep_last=2))
    t.fit()
    assert [p.name for p in t.checkpoints()] == ["step-00000008.safetensors", "step-00000010.safetensors"]


@pytest.mark.slow  # trains
def test_nan_loss_is_skipped_and_counted(tmp_path):
    t = trainer(tmp_path, model=ToyModel(nan_at={2, 5}))
    result = t.fit()
    assert result["skipped"] == 2 and t.step == CFG.steps
    for path in t.checkpoints():
        tensors, meta = read_checkpoint(path)
        assert all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())
    assert meta["skipped_steps"] == 2


def test_too_many_bad_steps_stop_with_a_clear_error(tmp_path):
    t = trainer(tmp_path, TrainConfig(steps=20, batch_size=8, max_bad_steps=3), model=ToyModel(nan_at=range(1, 50)))
    with pytest.raises(TrainingError, match="non-finite"):
        t.fit()


def test_non_finite_tensor_is_never_written(tmp_path):
    with pytest.raises(CheckpointError, match="NaN"):
        write_checkpoint(tmp_path / "x.safetensors", {"w": torch.tensor([1.0, float("inf")])}, {})
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # trains
def test_config_mismatch_names_both_sides(tmp_path):
    trainer(tmp_path).fit()
    with pytest.raises(ConfigMismatchError, match="width: checkpoint has 16, caller has 32"):
        trainer(tmp_path, config={"width": 32}).fit(resume=True)


@pytest.mark.slow  # trains
def test_refuses_pickles_truncation_and_bad_headers(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("something tried to unpickle")

    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(torch, "load", boom)
    t = trainer(tmp_path / "run")
    t.fit()
    good = t.checkpoints()[-1]
    pt = tmp_path / "model.pt"
    with open(pt, "wb") as f:  # a real torch.save zip, written without the patched loaders
        torch.serialization.save({"w": torch.zeros(2)}, f)
    with pytest.raises(CheckpointError, match="never unpickles"):
        read_checkpoint(pt)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(b"\x80\x04" + b"\x00" * 20)
    with pytest.raises(CheckpointError, match="never unpickles"):
        read_checkpoint(raw)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-50])
    with pytest.raises(CheckpointError, match="corrupt|truncated"):
        read_checkpoint(cut)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\xff" * 8 + good.read_bytes()[8:])
    with pytest.raises(CheckpointError, match="header"):
        read_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "absent.safetensors")


def ranks_failure(stderr: str) -> str:
    """What a failed torchrun run's ranks said: their error lines first (torchrun's summary buries them)."""
    said = [line for line in stderr.splitlines() if any(k in line for k in ("Error", "error:", "terminate", "what()"))]
    return "\n".join(said[:40]) + "\n...\n" + stderr[-1500:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # torchrun processes
def test_torchrun_two_processes_on_cpu(tmp_path):
    out = tmp_path / "ddp"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
         str(Path(__file__).parent / "toy.py"), str(out)],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, ranks_failure(proc.stderr)
    assert proc.stdout.count("RESULT") == 2  # both ranks finished (their lines may interleave)
    ckpts = list((out / "checkpoints").glob("*.safetensors"))
    assert [p.name for p in ckpts] == ["step-00000004.safetensors"]
    tensors, meta = read_checkpoint(ckpts[0])
    assert meta["samples_seen"] == 4 * 8 * 2


@pytest.mark.slow  # torchrun processes
def test_torchrun_a_nan_on_one_rank_is_skipped_by_all(tmp_path):
    """A non-finite loss on one rank only: every rank skips that step (no rank waits in an all-reduce)."""
    import os

    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
         str(Path(__file__).parent / "toy.py"), str(tmp_path / "ddp")],
        capture_output=True, text=True, timeout=180, env={**os.environ, "TOY_NAN_RANK": "1"})
    assert proc.returncode == 0, ranks_failure(proc.stderr)
    assert proc.stdout.count("RESULT 4 skipped 1") == 2, proc.stdout


def test_header_length_starting_like_a_pickle_is_still_read(tmp_path):
    """A safetensors header whose length's first byte is 0x80 (a pickle's first byte) is valid."""
    import struct

    import torch

    from cosmos_sim.training.checkpoint import read_checkpoint, write_checkpoint

    for pad in range(0, 300):
        path = tmp_path / "c.safetensors"
        write_checkpoint(path, {"w": torch.ones(2)}, {"note": "x" * pad})
        if path.read_bytes()[:1] == b"\x80":
            break
    assert path.read_bytes()[:1] == b"\x80"
    tensors, meta = read_checkpoint(path)
    assert meta["note"] == "x" * pad and struct.unpack("<Q", path.read_bytes()[:8])[0] >= 128


@pytest.mark.slow  # trains
def test_time_schedule_ends_the_cosine_at_the_time_limit_and_counts_across_resumes(tmp_path):
    cfg = TrainConfig(steps=10**6, batch_size=8, lr=1e-2, warmup_steps=2, time_limit_s=0.4, schedule_by_time=True,
                      checkpoint_every=10**9, log_every=1)
    assert lr_at(cfg, 10, train_s=0.0) == pytest.approx(cfg.lr, rel=1e-3)  # early: the step count barely moved
    assert lr_at(cfg, 10, train_s=0.2) == pytest.approx(cfg.lr * (0.1 + 0.9 * 0.5))  # half the time: half-way down
    assert lr_at(cfg, 10, train_s=0.4) == pytest.approx(cfg.lr * cfg.min_lr_ratio)
    t = trainer(tmp_path, cfg)
    result = t.fit()
    assert 0 < result["step"] < cfg.steps and result["train_seconds"] >= cfg.time_limit_s
    logs = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # each step's rate follows the clock as the step before it left it (a loaded machine takes fewer, longer
    # steps, so how close the last one comes to the floor varies; that it follows the clock does not)
    for before, row in zip(logs[:-1], logs[1:], strict=True):
        assert row["lr"] == pytest.approx(lr_at(cfg, row["step"] - 1, before["time_s"]), rel=1e-6)
    assert logs[-1]["lr"] < 0.5 * max(row["lr"] for row in logs)  # well down the cosine as time ran out
    _, meta = read_checkpoint(t.checkpoints()[-1])
    assert meta["train_seconds"] >= cfg.time_limit_s
    again = trainer(tmp_path, cfg)
    assert again.fit(resume=True)["step"] == result["step"]  # the budget is spent: no further step


def test_step_schedule_ignores_the_clock():
    assert lr_at(CFG, 5, train_s=1e9) == lr_at(CFG, 5)


@pytest.mark.slow  # trains
def test_step_scheduled_time_limit_counts_per_call(tmp_path):
    cfg = TrainConfig(steps=10**6, batch_size=8, time_limit_s=0.2, checkpoint_every=10**9)
    first = trainer(tmp_path, cfg).fit()
    assert 0 < first["step"] < cfg.steps and first["train_seconds"] >= cfg.time_limit_s
    again = trainer(tmp_path, cfg).fit(resume=True)  # a fresh 0.2 s for this call
    assert again["step"] > first["step"] and again["train_seconds"] >= cfg.time_limit_s


def test_fewer_samples_than_processes_is_a_clear_error():
    from cosmos_sim.training.trainer import ResumableSampler

    with pytest.raises(TrainingError, match="fewer than the 4 processes"):
        ResumableSampler(3, seed=0, rank=0, world_size=4)
    assert len(list(zip(range(5), ResumableSampler(4, seed=0, rank=3, world_size=4), strict=False))) == 5


@pytest.mark.slow  # trains
def test_tensorboard_events_beside_the_metrics_and_purged_on_resume(tmp_path):
    from cosmos_sim.training.events import read_scalars

    cfg = TrainConfig(steps=6, batch_size=8, checkpoint_every=3, log_every=1, warmup_steps=1)
    Trainer(ToyModel(), ToyData(), cfg, tmp_path, kind="toy", model_config={}, progress=False).fit()
    tags = read_scalars(tmp_path / "tb")
    assert [s for s, _ in tags["train/loss"]] == [1, 2, 3, 4, 5, 6]
    cfg = TrainConfig(steps=8, batch_size=8, checkpoint_every=3, log_every=1, warmup_steps=1)
    Trainer(ToyModel(), ToyData(), cfg, tmp_path, kind="toy", model_config={}, progress=False).fit(resume=True)
    steps = [s for s, _ in read_scalars(tmp_path / "tb")["train/loss"]]
    assert steps[-1] == 8 and sorted(set(steps)) == list(range(1, 9))
