"""cosmos_sim: learned world models served as Gymnasium environments, beside physics twins.

Importing the package registers the gym ids `cosmos_sim/<World>-v0`.
"""

import os
import sys

# Headless MuJoCo rendering unless the user chose a GL backend: EGL on Linux; macOS has no EGL, and
# MuJoCo renders offscreen there through CGL; Windows uses its own WGL (MuJoCo's default).
if sys.platform.startswith("linux"):
    os.environ.setdefault("MUJOCO_GL", "egl")
elif sys.platform == "darwin":
    os.environ.setdefault("MUJOCO_GL", "cgl")
# Mesa's software GL spawns render threads that do not survive fork (async vector envs hang).
os.environ.setdefault("LP_NUM_THREADS", "0")

from cosmos_sim.camera import CameraPose, CameraRange, orbit  # noqa: E402
from cosmos_sim.envs.registration import register_envs  # noqa: E402
from cosmos_sim.errors import ActionError, CameraError, CosmosSimError, UnknownChoiceError  # noqa: E402
from cosmos_sim.version import __version__  # noqa: E402
from cosmos_sim.worlds import WORLDS, World, get_world  # noqa: E402

register_envs()


def __getattr__(name: str):
    # WorldModel pulls in torch; load it on first use so `import cosmos_sim` stays light for physics envs.
    if name == "WorldModel":
        from cosmos_sim.world_model import WorldModel

        return WorldModel
    raise AttributeError(f"module 'cosmos_sim' has no attribute {name!r}")


__all__ = ["WorldModel", "CameraPose", "CameraRange", "orbit", "WORLDS", "World", "get_world", "CosmosSimError",
           "UnknownChoiceError", "CameraError", "ActionError", "__version__"]
