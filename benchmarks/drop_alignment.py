"""Physical alignment on Drop: passive drops in MuJoCo (the reference), PyBullet (the yardstick) and a learned world.

    .venv/bin/python benchmarks/drop_alignment.py --model pretrained     # or a run directory / .safetensors
    .venv/bin/python benchmarks/drop_alignment.py --model RUN --episodes 50 --steps 80 --seed 1000
    .venv/bin/python benchmarks/drop_alignment.py --physics-only         # PyBullet against MuJoCo alone

Drop i starts from seed SEED+i in every backend and runs with zero action (passive physics); per object
in play: height against time, the first bounce (step and height), the resting position and pairwise
collisions, each against MuJoCo (see cosmos_sim/evaluation/physics_alignment.py). Prints a table and
writes benchmarks/results/drop_alignment.json (the config inside), and beside it drop_alignment.md (the
report section) and drop_alignment_heights.png (height against time for a few drops).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

RESULTS = Path(__file__).resolve().parent / "results" / "drop_alignment.json"
FLAGS = ("episodes", "steps", "seed", "camera", "plot_drops", "device")


def main(argv: list[str] | None = None) -> int:
    from cosmos_sim.config import add_args, from_args
    from cosmos_sim.evaluation.physics_alignment import AlignmentConfig, markdown, physics_alignment
    from cosmos_sim.fileio import atomic_write_bytes, atomic_write_json

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="world model: a run directory, a .safetensors file or 'pretrained'")
    ap.add_argument("--physics-only", action="store_true", help="PyBullet against MuJoCo only, no world model")
    add_args(ap, AlignmentConfig, FLAGS)
    ap.add_argument("--out", default=str(RESULTS), help="results JSON; the report section and plot go beside it")
    args = ap.parse_args(argv)
    if (args.model is None) == (not args.physics_only):
        ap.error("give --model PATH (or 'pretrained'), or --physics-only")
    backends = ("pybullet",) if args.physics_only else ("pybullet", "world_model")
    try:
        config = from_args(AlignmentConfig, args, FLAGS, world="Drop", backends=backends)
        t0 = time.perf_counter()
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        result = physics_alignment(config, model=args.model, out=out.parent, plot_name=f"{out.stem}_heights.png")
    except (ValueError, FileNotFoundError) as e:
        print(f"drop_alignment: error: {e}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - t0
    table(result)
    import torch

    atomic_write_json(out, {"benchmark": "drop_alignment", "model": args.model, "result": result,
                            "wall_s": round(wall, 1),
                            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                        "torch": torch.__version__}})
    md = out.with_suffix(".md")
    atomic_write_bytes(md, ("\n".join(markdown(result)) + "\n").encode())
    plot = result["files"].get("heights_plot")
    print(f"wrote {out}, {md}" + (f" and {out.parent / plot}" if plot else ""))
    return 0


def table(result: dict) -> None:
    from cosmos_sim.text import format_table

    names = {"pybullet": "PyBullet", "world_model": "learned"}

    def cm(x):
        return "-" if x is None else f"{100 * x:.1f}"

    def num(x):
        return "-" if x is None else f"{x:.2f}"

    rows = []
    for name, s in result["backends"].items():
        rows.append([names.get(name, name), num(s["bounce"]["episodes_within_one_step"]),
                     num(s["bounce"]["time_error_steps"]["mean"]), cm(s["bounce"]["height_error_m"]["mean"]),
                     cm(s["height"]["error_m"]["mean"]), cm(s["resting"]["error_m"]["mean"]),
                     cm(s["resting"]["error_m"]["median"]), num(s["collisions"]["episode_agreement"])])
    ref = result["reference"]
    print(f"\nDrop, {result['episodes']} passive drops ({ref['objects_in_play']} objects in play, "
          f"{result['steps']} steps), against MuJoCo")
    print(format_table(["backend", "bounce ±1 step", "bounce dt (steps)", "bounce h err cm", "height err cm",
                        "rest err cm", "rest err median cm", "collision agree"], rows))
    for key, t in result["targets"].items():
        print(f"target {key}: {json.dumps(t)}")


if __name__ == "__main__":
    raise SystemExit(main())
