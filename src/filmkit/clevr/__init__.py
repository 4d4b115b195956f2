"""The CLEVR world: its properties (one source of truth), the camera, and a numpy renderer with the CLEVR look.

Example::

    from filmkit.clevr import Camera, load_properties

    props = load_properties()
    Camera.base(480, 320).ground_directions()["behind"]  # (-0.7545..., 0.6563..., 0.0)
"""

from filmkit.clevr.camera import Camera, lights_from_scene
from filmkit.clevr.properties import CameraSettings, Light, LightRig, Properties, load_properties

__all__ = [
    "Camera",
    "CameraSettings",
    "Light",
    "LightRig",
    "Properties",
    "lights_from_scene",
    "load_properties",
]
