"""Calibrated termination, per-policy trust and `twin refine`, measured on the point-mass test env (CPU, ~4 min).

    python benchmarks/trust.py            # writes benchmarks/results/trust_pointmass.json and prints the tables

1. Termination head on rare events: point-mass steps of which ~1 % terminate (tests/twins/test_termination.py's
   data), trained three ways (the old rule: uncapped class weight, one network, logit > 0; the capped weight;
   the shipped head: capped weight, an ensemble), each judged at logit > 0 and at the threshold of best F1
   calibrated on one half of the held-out steps, on the other half.
2. Trust and refine: the point-mass twin asset (tests/assets/pointmass_twin.safetensors, trained on random and
   explore episodes), four policies (random, explore, a damped pull to the goal, full throttle to a corner),
   `twin refine` with its defaults but 10 real episodes per flagged policy and 3 rounds: which policies it
   flags, the real steps it gathers, and the ranking before and after.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# the point-mass env and its twin asset live with the tests (and tests/twins, not this directory's twins.py)
sys.path[:] = [str(ROOT.parent / "tests"), *(p for p in sys.path if Path(p or ".").resolve() != ROOT)]
OUT = ROOT / "results" / "trust_pointmass.json"
POLICIES = ("random", "explore", "twins.pointmass:to_goal", "twins.pointmass:full_throttle")


def termination() -> list[dict]:
    import torch

    from cosmos_sim.task_head import TaskHead, calibrate_task_head, fit_task_head, task_metrics

    from twins.test_termination import normalized, point_mass_steps

    train, held = point_mass_steps(60_000, seed=1), point_mass_steps(40_000, seed=2)
    mean, std = train["prev"].mean(0), train["prev"].std(0)
    train, held = normalized(train, mean, std), normalized(held, mean, std)
    half = len(held["rewards"]) // 2
    cal, ev = ({k: v[:half] for k, v in held.items()}, {k: v[half:] for k, v in held.items()})
    rows = []
    heads = (("uncapped weight, 1 network (before)", 1000.0, 1), ("capped weight, 1 network", 10.0, 1),
             ("capped weight, 3 members", 10.0, 3))
    for name, cap, members in heads:
        torch.manual_seed(0)
        head = TaskHead(4, 2, hidden=128, members=members)
        fit_task_head(head, train, steps=2500, progress=False, pos_weight_cap=cap)
        m = task_metrics(head, ev, 0.0, calibrate_task_head(head, cal))
        rows.append({"head": name, "rate": m["termination_rate"], "threshold": m["termination_threshold"],
                     **{k: m[f"termination_{k}"] for k in ("precision_at_0", "recall_at_0", "precision", "recall")}})
    return rows


def refine() -> dict:
    from cosmos_sim.data import CollectConfig, collect
    from cosmos_sim.evaluation import refine as rf
    from cosmos_sim.world_model import WorldModel

    from assets.build import POINTMASS_TWIN, TWIN_DATA
    from twins import pointmass

    pointmass.register()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        collect(CollectConfig(**TWIN_DATA), root / "data", progress=False)
        m = WorldModel.load(POINTMASS_TWIN)
        m.info["data"] = str(root / "data")
        cfg = rf.RefineConfig(env="cosmos_test/PointMass-v0", policies=POLICIES, episodes=10, rounds=3,
                              rank_episodes=30, device="cpu")
        t0 = time.perf_counter()
        record = rf.refine(cfg, m.save(root / "twin.safetensors"), root / "out", progress=False)
        record["seconds"] = time.perf_counter() - t0
    return record


def main() -> None:
    result = {"termination": termination(), "refine": refine(),
              "machine": {"platform": platform.platform(), "python": platform.python_version()}}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print("| termination head | P / R at logit > 0 | calibrated threshold | P / R calibrated |")
    print("|---|---|---:|---|")
    for r in result["termination"]:
        print(f"| {r['head']} | {r['precision_at_0']:.3f} / {r['recall_at_0']:.3f} | {r['threshold']:.2f} | "
              f"{r['precision']:.3f} / {r['recall']:.3f} |")
    from cosmos_sim.evaluation.refine import markdown

    print(markdown(result["refine"]))


if __name__ == "__main__":
    main()
