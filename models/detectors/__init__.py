"""Detector backends, one per file, each exposing ``build(**options) -> Backend``.

They are run by ``models.detect.ScaledDetector`` and never called directly by the pipeline.
"""
