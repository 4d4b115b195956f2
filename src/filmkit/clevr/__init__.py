"""The CLEVR world: its properties (one source of truth), the camera, and a numpy renderer with the CLEVR look.

Example::

    from filmkit.clevr import Camera, load_properties, render_scene, save_png

    props = load_properties()
    Camera.base(480, 320).ground_directions()["behind"]  # (-0.7545..., 0.6563..., 0.0)
    scene = {"objects": [{"shape": "cube", "size": "large", "material": "metal", "color": "red",
                          "3d_coords": [0.0, 0.0, 0.7], "rotation": 20.0}]}
    save_png("cube.png", render_scene(scene, props, 480, 320).image)
"""

from filmkit.clevr.camera import Camera, lights_from_scene
from filmkit.clevr.properties import CameraSettings, Light, LightRig, Properties, load_properties
from filmkit.clevr.render import RenderResult, render_masks, render_scene, save_png, scene_solids

__all__ = [
    "Camera",
    "CameraSettings",
    "Light",
    "LightRig",
    "Properties",
    "RenderResult",
    "lights_from_scene",
    "load_properties",
    "render_masks",
    "render_scene",
    "save_png",
    "scene_solids",
]
