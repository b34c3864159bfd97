"""Physics env throughput: env steps/s with rendering (obs_mode="both") per backend and world.

Two settings per backend × world:
- 1 process: `gym.make` env, random actions, `reset` when an episode ends (counted in the time).
  The physics step and the render are timed inside that same loop, so the table also says where
  the time goes (physics | render | everything else: Python, state reading, checks, resets).
- async vector env: `gym.make_vec(..., vectorization_mode="async", num_envs=N)` (N worker processes,
  autoreset inside), reporting the total steps/s of all N envs.

Usage:
    python benchmarks/physics_throughput.py                     # 2000 timed steps per setting
    python benchmarks/physics_throughput.py --steps 500 --worlds push --backends mujoco

Prints a table and writes benchmarks/results/physics_throughput.json (config, machine, results).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import cosmos_sim  # noqa: E402,F401  (registers the gym ids)
from cosmos_sim.envs import PHYSICS_BACKENDS, env_id  # noqa: E402
from cosmos_sim.fileio import atomic_write_json  # noqa: E402
from cosmos_sim.worlds import WORLDS, get_world  # noqa: E402

TARGET_MUJOCO_STEPS_PER_S = 800
_GL_RENDERER: str | None = None
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "physics_throughput.json"


class _Timed:
    """Wraps a bound method and accumulates the seconds spent in it."""

    def __init__(self, fn):
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *a, **k):
        t = time.perf_counter()
        try:
            return self.fn(*a, **k)
        finally:
            self.seconds += time.perf_counter() - t
            self.calls += 1


def bench_single(world: str, backend: str, image_size: int, warmup: int, steps: int, seed: int,
                 repeats: int) -> dict:
    """Timed in `repeats` consecutive chunks of steps / repeats; the best chunk is the headline figure
    (the least disturbed by other load on the machine), the median is reported beside it."""
    env = gym.make(env_id(world), backend=backend, obs_mode="both", image_size=image_size)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (warmup + steps, *env.action_space.shape)).astype(np.float32)
    chunks = []
    try:
        env.reset(seed=seed)
        for i in range(warmup):
            _, _, term, trunc, _ = env.step(actions[i])
            if term or trunc:
                env.reset()
        sim = env.unwrapped.sim
        sim.step = step_t = _Timed(sim.step)  # instance attributes shadow the methods
        sim.render = render_t = _Timed(sim.render)
        bounds = np.linspace(warmup, warmup + steps, repeats + 1).astype(int)
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            step_t.seconds = render_t.seconds = 0.0
            episodes = 0
            c0, t0 = time.process_time(), time.perf_counter()
            for i in range(lo, hi):
                _, _, term, trunc, _ = env.step(actions[i])
                if term or trunc:
                    env.reset()
                    episodes += 1
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            ms = 1e3 / (hi - lo)
            chunks.append({"steps": int(hi - lo), "seconds": round(dt, 4), "steps_per_s": round((hi - lo) / dt, 1),
                           "cpu_seconds": round(cpu, 4), "episodes_ended": episodes,
                           "ms_per_step": round(dt * ms, 4), "ms_physics": round(step_t.seconds * ms, 4),
                           "ms_render": round(render_t.seconds * ms, 4),
                           "ms_other": round((dt - step_t.seconds - render_t.seconds) * ms, 4)})
        if backend == "mujoco":
            global _GL_RENDERER
            _GL_RENDERER = _GL_RENDERER or gl_renderer()
    finally:
        env.close()
    best = max(chunks, key=lambda c: c["steps_per_s"])
    return {**best, "steps": steps, "repeats": repeats,
            "median_steps_per_s": round(float(np.median([c["steps_per_s"] for c in chunks])), 1),
            "chunks": chunks}


def bench_async(world: str, backend: str, image_size: int, warmup: int, steps: int, seed: int, num_envs: int,
                context: str) -> dict:
    """`steps` is the number of env steps in total (vector steps = steps / num_envs)."""
    t_start = time.perf_counter()
    envs = gym.make_vec(env_id(world), num_envs=num_envs, vectorization_mode="async",
                        vector_kwargs={"context": context}, backend=backend, obs_mode="both", image_size=image_size)
    try:
        envs.reset(seed=seed)
        startup = time.perf_counter() - t_start
        rng = np.random.default_rng(seed)
        n_warm, n_timed = max(1, warmup // num_envs), max(1, steps // num_envs)
        actions = rng.uniform(-1, 1, (n_warm + n_timed, *envs.action_space.shape)).astype(np.float32)
        for i in range(n_warm):
            envs.step(actions[i])
        t0 = time.perf_counter()
        for i in range(n_warm, n_warm + n_timed):
            envs.step(actions[i])
        dt = time.perf_counter() - t0
    finally:
        envs.close()
    total = n_timed * num_envs
    return {"num_envs": num_envs, "context": context, "steps": total, "seconds": round(dt, 4),
            "steps_per_s": round(total / dt, 1), "steps_per_s_per_env": round(total / dt / num_envs, 1),
            "startup_seconds": round(startup, 2)}


def gl_renderer() -> str | None:
    """The OpenGL renderer MuJoCo used in this process (e.g. llvmpipe = software rendering)."""
    try:
        from OpenGL import GL

        r = GL.glGetString(GL.GL_RENDERER)
        return r.decode() if r else None
    except Exception:
        return None


def machine_info() -> dict:
    import mujoco
    import pybullet

    cpu = platform.processor() or None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
            "cpu_count": os.cpu_count(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
            "MUJOCO_GL": os.environ.get("MUJOCO_GL"), "mujoco": mujoco.__version__,
            "pybullet_api": pybullet.getAPIVersion(), "gymnasium": gym.__version__, "numpy": np.__version__,
            "cosmos_sim": cosmos_sim.__version__}


def format_table(results: list[dict], num_envs: int) -> str:
    headers = ["backend", "world", "1 proc steps/s", "(median)", "physics ms", "render ms", "other ms",
               f"async x{num_envs} steps/s", "speed-up"]
    rows = []
    for r in results:
        s, a = r["single"], r.get("async")
        rows.append([r["backend"], r["world"], f"{s['steps_per_s']:.0f}", f"({s['median_steps_per_s']:.0f})",
                     f"{s['ms_physics']:.2f}",
                     f"{s['ms_render']:.2f}", f"{s['ms_other']:.2f}",
                     f"{a['steps_per_s']:.0f}" if a else "-",
                     f"{a['steps_per_s'] / s['steps_per_s']:.2f}x" if a else "-"])
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths,
                                                                                          strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                                strict=True))))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=2000, help="timed env steps per setting")
    p.add_argument("--warmup", type=int, default=100, help="untimed env steps before timing")
    p.add_argument("--repeats", type=int, default=3,
                   help="1-process timing is split into this many chunks; the table shows the best (and median)")
    p.add_argument("--worlds", nargs="+", default=[w.lower() for w in WORLDS], help="worlds to run")
    p.add_argument("--backends", nargs="+", default=list(PHYSICS_BACKENDS), choices=PHYSICS_BACKENDS)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--num-envs", type=int, default=2, help="processes of the async vector env (0: skip it)")
    p.add_argument("--context", default="spawn", choices=["spawn", "forkserver", "fork"],
                   help="multiprocessing start method of the async vector env")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or not 1 <= args.repeats <= args.steps:
        p.error("--steps must be >= 1, --warmup >= 0 and 1 <= --repeats <= --steps")
    worlds = [get_world(w).name for w in args.worlds]

    t_all = time.perf_counter()
    machine = machine_info()
    results = []
    for backend in args.backends:
        for world in worlds:
            print(f"[{backend} {world}] 1 process ...", file=sys.stderr, flush=True)
            r = {"backend": backend, "world": world.lower(),
                 "single": bench_single(world, backend, args.image_size, args.warmup, args.steps, args.seed,
                                         args.repeats)}
            if args.num_envs > 0:
                print(f"[{backend} {world}] async x{args.num_envs} ...", file=sys.stderr, flush=True)
                r["async"] = bench_async(world, backend, args.image_size, args.warmup, args.steps, args.seed,
                                         args.num_envs, args.context)
            results.append(r)
    seconds = time.perf_counter() - t_all
    machine["gl_renderer"] = _GL_RENDERER
    machine["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    print(f"\nPhysics env throughput, obs_mode='both', {args.image_size}x{args.image_size} rendering, random actions, "
          f"{args.steps} timed steps after {args.warmup} warm-up")
    print(f"machine: {machine['cpu']}, {machine['cpu_count']} CPUs, GL renderer {machine.get('gl_renderer')}, "
          f"load avg (1 min) at start {machine['load_avg_at_start'][0]}, at end {machine['load_avg_at_end'][0]}\n")
    print(format_table(results, args.num_envs))
    print(f"\n1 proc: best of {args.repeats} chunks (median in brackets); ms columns are per step in the best chunk: "
          "physics = backend step (all substeps), render = backend render, other = the rest of env.step "
          "(state read, checks, info, resets)")
    mj = [r for r in results if r["backend"] == "mujoco"]
    if mj:
        below = [r["world"] for r in mj if r["single"]["steps_per_s"] < TARGET_MUJOCO_STEPS_PER_S]
        print(f"MuJoCo target >= {TARGET_MUJOCO_STEPS_PER_S} steps/s per process: "
              + ("met in every world" if not below else f"NOT met in: {', '.join(below)}"))
    print(f"total runtime {seconds:.1f} s")

    atomic_write_json(args.out, {
        "benchmark": "physics_throughput",
        "command": " ".join(["python benchmarks/physics_throughput.py", *(argv if argv is not None else sys.argv[1:])]),
        "config": {"steps": args.steps, "warmup": args.warmup, "image_size": args.image_size, "obs_mode": "both",
                   "repeats": args.repeats, "num_envs_async": args.num_envs, "context": args.context, "seed": args.seed,
                   "actions": "uniform random in [-1, 1]", "autoreset": True},
        "machine": machine,
        "target_mujoco_steps_per_s": TARGET_MUJOCO_STEPS_PER_S,
        "results": results,
        "runtime_seconds": round(seconds, 1),
    })
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
