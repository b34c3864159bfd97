"""A world's MJCF read without MuJoCo: the numbers its task and expert need, from the one file that holds them.

Values are read as written on the named element (`size`, `pos`, `fromto`, `mass`, `euler`, `range`);
`<default>` classes are not resolved, so an attribute the code reads must be written on the element itself.
Angles follow the file's `<compiler angle=...>` (MuJoCo's default is degrees) and come back in radians.
"""

from __future__ import annotations

import functools
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ACTUATORS = ("motor", "position", "velocity", "general")


@dataclass(frozen=True)
class Element:
    """One named MJCF element (geom, body, joint, site, ...) and its attributes as written."""

    tag: str
    name: str
    attrib: dict[str, str]
    file: str
    radians: bool  # the file's compiler angle unit

    def numbers(self, attr: str, default: tuple[float, ...] | None = None) -> tuple[float, ...]:
        """A numeric attribute as a tuple, e.g. `geom.numbers("size")` -> (0.05, 0.05, 0.05)."""
        if attr not in self.attrib:
            if default is not None:
                return default
            raise KeyError(f"{self.tag} {self.name!r} in {self.file} has no {attr!r} attribute written on it "
                           "(default classes are not resolved)")
        return tuple(float(v) for v in self.attrib[attr].split())

    @property
    def size(self) -> tuple[float, ...]:
        return self.numbers("size")

    @property
    def pos(self) -> np.ndarray:
        return np.array(self.numbers("pos", (0.0, 0.0, 0.0)))

    @property
    def mass(self) -> float:
        return self.numbers("mass")[0]

    @property
    def range(self) -> tuple[float, float]:
        """`range` (a joint's limits; hinge limits in radians) or `ctrlrange` (an actuator's)."""
        lo, hi = self.numbers("ctrlrange" if self.tag in ACTUATORS else "range")
        if self.tag == "joint" and self.attrib.get("type", "hinge") == "hinge" and not self.radians:
            lo, hi = math.radians(lo), math.radians(hi)
        return lo, hi

    @property
    def length(self) -> float:
        """Length of a `fromto` segment (a capsule's or cylinder's axis)."""
        v = self.numbers("fromto")
        return float(np.linalg.norm(np.subtract(v[3:], v[:3])))

    def rotation(self) -> np.ndarray:
        """The element's 3x3 orientation from `euler` (MuJoCo's default intrinsic x-y-z); identity if none."""
        if "quat" in self.attrib or "axisangle" in self.attrib or "xyaxes" in self.attrib or "zaxis" in self.attrib:
            raise NotImplementedError(f"{self.tag} {self.name!r} in {self.file}: only 'euler' orientations are read")
        a, b, c = self.numbers("euler", (0.0, 0.0, 0.0))
        if not self.radians:
            a, b, c = math.radians(a), math.radians(b), math.radians(c)
        ca, sa, cb, sb, cc, sc = math.cos(a), math.sin(a), math.cos(b), math.sin(b), math.cos(c), math.sin(c)
        rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
        ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
        rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
        return rx @ ry @ rz


class Mjcf:
    """Named elements of one MJCF file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        root = ET.parse(self.path).getroot()
        compiler = root.find("compiler")
        if compiler is not None and compiler.get("eulerseq", "xyz") != "xyz":
            raise NotImplementedError(f"{self.path.name}: only the default eulerseq 'xyz' is read")
        radians = compiler is not None and compiler.get("angle") == "radian"
        self._elements: dict[tuple[str, str], Element] = {}
        for el in root.iter():
            name = el.get("name")
            if name is not None:
                self._elements[(el.tag, name)] = Element(el.tag, name, dict(el.attrib), self.path.name, radians)

    def element(self, tag: str, name: str) -> Element:
        try:
            return self._elements[(tag, name)]
        except KeyError:
            raise KeyError(f"{self.path.name} has no {tag} named {name!r}") from None

    def geom(self, name: str) -> Element:
        return self.element("geom", name)

    def body(self, name: str) -> Element:
        return self.element("body", name)

    def joint(self, name: str) -> Element:
        return self.element("joint", name)

    def actuator(self, name: str) -> Element:
        for tag in ACTUATORS:
            if (tag, name) in self._elements:
                return self._elements[(tag, name)]
        raise KeyError(f"{self.path.name} has no actuator named {name!r}")


@functools.lru_cache(maxsize=64)
def load_mjcf(path: str) -> Mjcf:
    """Parsed once per file and process: experts read their geometry every step."""
    return Mjcf(path)
