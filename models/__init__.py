"""Pure analysis functions of the face pipeline: no Redis, no files written.

One module per stage, each taking a batch and returning frozen dataclasses:

- ``models.decode``     bytes -> BGR uint8 pixels (EXIF applied), with named decode errors
- ``models.detect``     BGR images -> face boxes with scores (backend registry, large-photo scaling)
- ``models.landmarks``  image + boxes -> 68 iBUG points, head pose and crop quality
- ``models.pose``       68 points -> yaw / pitch / roll (solvePnP on a generic 3D face)
- ``models.quality``    face crop -> sharpness and brightness
- ``models.agegender``  face crops -> age and gender (DeepFace's VGG-Face models, one shared trunk)
- ``models.analysis``   the analysis steps on a photo's job (faces; points, pose, quality; age and
                        gender), which the stage adapters and the in-process API (faces.api) share
- ``models.weights``    registry of every model file, status check and download of missing ones

Nothing is imported here on purpose: the detect and landmark workers must not pay for
TensorFlow, which only ``models.agegender`` loads.
"""
