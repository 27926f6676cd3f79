"""affectzoo pipelines package."""
# OpenCV must load its codec libraries before decord: decord bundles its own, and when it loads
# first cv2.imdecode fails on PNGs ("libpng error: bad parameters to zlib"). Every module that
# imports decord lives in a package whose __init__ imports cv2 first.
import cv2  # noqa: F401
