"""Detector backends, one per file, each exposing ``build(**options) -> Backend`` (and
``check()`` when it needs a file that may be missing).

They are run by ``models.detect.ScaledDetector`` and never called directly by the pipeline.
The names live here, in a module that imports nothing heavy, so that the CLI can list them in
its help without importing OpenCV.
"""

from faces import settings as defaults

# Chosen by measurement on the 9 annotated dlib-faces photos (tests/measure_models.py):
# dlib-hog with one upsampling found 43/43 faces, no false positive, ~60 ms per 500x375
# photo; opencv-haar 39/43 with a false positive; dlib-cnn 41/43 but ~5 s per photo.
DEFAULT_BACKEND = defaults.DETECTOR

# name -> module holding a ``build(**options)`` returning a Backend.
MODULES = {
    "dlib-hog": "faces.models.detectors.dlib_hog",
    "opencv-haar": "faces.models.detectors.opencv_haar",
    "dlib-cnn": "faces.models.detectors.dlib_cnn",
    "opencv-yunet": "faces.models.detectors.opencv_yunet",
}
BACKENDS = tuple(MODULES)
