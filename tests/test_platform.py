"""Importing the package leaves the user's GL settings alone, and a GL backend that cannot render gives a
clear error rather than a crash inside MuJoCo."""

import os
import subprocess
import sys

import pytest


def test_import_keeps_the_users_gl_settings():
    code = "import os, cosmos_sim; print(os.environ['MUJOCO_GL'], os.environ['LP_NUM_THREADS'])"
    env = {**os.environ, "MUJOCO_GL": "osmesa", "LP_NUM_THREADS": "4"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["osmesa", "4"]
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "LP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == (["egl", "0"] if sys.platform.startswith("linux") else out.split())


def test_a_backend_that_cannot_render_names_itself(monkeypatch):
    import mujoco

    from cosmos_sim.envs.mujoco_sim import make_renderer
    from cosmos_sim.errors import RenderError

    def fail(*args, **kwargs):
        raise mujoco.FatalError("an OpenGL platform library has not been loaded into this process")

    monkeypatch.setattr(mujoco, "Renderer", fail)
    with pytest.raises(RenderError, match="MUJOCO_GL="):
        make_renderer(mujoco.MjModel.from_xml_string("<mujoco/>"), 16, 16)
