"""Shot boundaries (hard cuts and fades) on the frames a pipeline decodes anyway.

Every frame handed to :class:`ShotDetector` is downscaled (``cv2.resize`` ``INTER_AREA`` to
:data:`DEFAULT_WIDTH` px wide) and given to two PySceneDetect detectors frame by frame
(``SceneDetector.process_frame``, PySceneDetect 0.7, BSD-3-Clause, B. Castellano,
https://github.com/Breakthrough/PySceneDetect):

- hard cuts: ``ContentDetector`` (the mean absolute difference of the HSV channels of consecutive
  frames, PySceneDetect's ``content_val``) above ``content_threshold`` **and** ``HistogramDetector``
  (1 - correlation of the luma histograms) above ``histogram_threshold``; or ``content_val`` alone
  above ``strong_threshold``. The histogram test keeps camera and subject motion between sparse
  sampled frames (``content_val`` up to ~45 at 5 fps on the sample clips) from counting as cuts,
  since motion moves pixels but barely changes the histogram. A cut is known at the frame that
  starts the new shot (no look-ahead);
- ``ThresholdDetector`` for fades to and from black: a shot ends when the mean pixel falls below
  ``fade_threshold`` and the next one starts at the first frame above it again (``fade_bias=1``).
  The steps of the ramp itself are no cuts: a frame that is the previous one scaled in brightness
  (luma ratio beyond 1.15 either way, mean absolute residual of the scaled previous frame under
  0.3 of the mean; unrelated pictures measured >= 0.38, fade steps of moving scenes <= 0.24)
  does not count for the content tests.

The frames may be every frame of a video or a sparse sample (e.g. 5 fps): the detectors compare
consecutive frames *as given*, and ``min_shot_frames`` counts frames as given. Shot indices are
0-based and increase by one at each boundary. Frames are uint8 ``[H, W, 3]`` **RGB** (affectzoo's
decode convention); they are turned to BGR (PySceneDetect's, OpenCV's) after downscaling.

Limits: a cross-dissolve between two shots without black in between is found only when one
sampled step changes the picture by more than ``content_threshold``.
"""
from __future__ import annotations

from typing import Iterable, Optional

import cv2
import numpy as np

__all__ = ["ShotDetector", "detect_shots"]

#: ``ContentDetector`` threshold on ``content_val`` for a cut the histogram test confirms.
DEFAULT_CONTENT_THRESHOLD = 20.0
#: ``HistogramDetector`` threshold on 1 - correlation of the luma histograms (PySceneDetect's 0.2).
DEFAULT_HISTOGRAM_THRESHOLD = 0.3
#: ``content_val`` above which a change is a cut whatever the histograms say.
DEFAULT_STRONG_THRESHOLD = 65.0
#: ``ThresholdDetector`` mean-pixel level (0-255) under which a frame is faded out (PySceneDetect's 12).
DEFAULT_FADE_THRESHOLD = 12.0
#: ``ContentDetector`` weights of the hue, saturation, luma and edge differences.
DEFAULT_CONTENT_WEIGHTS = (1.0, 1.0, 1.0, 0.0)
#: Width in pixels the frames are downscaled to before detection.
DEFAULT_WIDTH = 160
#: Frames (as given) a shot lasts at least before the next cut is accepted.
DEFAULT_MIN_SHOT_FRAMES = 2
#: A step between frames is a fade step when the luma scales by more than this factor (or its
#: inverse) and the frame is the previous one so scaled within ``_FADE_RESIDUAL`` of its mean.
_FADE_RATIO, _FADE_RESIDUAL = 1.15, 0.3
#: Nominal frame rate of the frame counter handed to PySceneDetect (only its frame numbers matter).
_COUNTER_FPS = 25.0


class ShotDetector:
    """Incremental shot boundary detector: one :meth:`update` per frame, in order.

    Args:
        content_threshold: ``content_val`` a cut needs together with the histogram test (> 0).
        histogram_threshold: 1 - luma-histogram correlation a cut needs (in (0, 1]).
        strong_threshold: ``content_val`` that is a cut on its own (>= ``content_threshold``).
        fade_threshold: mean pixel value (0-255) under which a frame counts as faded to black.
        min_shot_frames: frames (as given) a shot lasts at least before the next cut (>= 1).
        width: downscaled width in pixels (>= 16); narrower frames are used as they are.

    Raises:
        ValueError: a setting out of range (TypeError for an unknown keyword).
    """

    def __init__(self, content_threshold: float = DEFAULT_CONTENT_THRESHOLD,
                 histogram_threshold: float = DEFAULT_HISTOGRAM_THRESHOLD,
                 strong_threshold: float = DEFAULT_STRONG_THRESHOLD,
                 fade_threshold: float = DEFAULT_FADE_THRESHOLD,
                 min_shot_frames: int = DEFAULT_MIN_SHOT_FRAMES, width: int = DEFAULT_WIDTH,
                 content_weights: tuple = DEFAULT_CONTENT_WEIGHTS):
        from scenedetect.detectors import ContentDetector, HistogramDetector, ThresholdDetector

        if not 0 < content_threshold <= strong_threshold or not 0 < histogram_threshold <= 1:
            raise ValueError("need 0 < content_threshold <= strong_threshold and 0 < histogram_threshold <= 1, "
                             f"got {content_threshold}, {strong_threshold}, {histogram_threshold}")
        if not 0 <= fade_threshold <= 255 or min_shot_frames < 1 or width < 16:
            raise ValueError(f"need fade_threshold in [0, 255], min_shot_frames >= 1, width >= 16, "
                             f"got {fade_threshold}, {min_shot_frames}, {width}")
        self.width, self.min_shot_frames = int(width), int(min_shot_frames)
        # min_scene_len 0 / 1: every frame above threshold is reported; the shot length rule is ours.
        weights = ContentDetector.Components(*content_weights)
        self._content = ContentDetector(threshold=float(content_threshold), min_scene_len=0, weights=weights)
        self._strong = ContentDetector(threshold=float(strong_threshold), min_scene_len=0, weights=weights)
        self._histogram = HistogramDetector(threshold=float(histogram_threshold), min_scene_len=1)
        self._fade = ThresholdDetector(threshold=float(fade_threshold), min_scene_len=1, fade_bias=1.0)
        self._frame, self._shot_start = -1, 0
        self._grey: Optional[np.ndarray] = None
        self.shot = 0

    def _small_bgr(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) < 1:
            raise ValueError(f"frame must be uint8 [H, W, 3] RGB, got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        if w > self.width:
            frame = cv2.resize(frame, (self.width, max(1, round(h * self.width / w))), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR)

    def _fading(self, small: np.ndarray) -> bool:
        """Whether ``small`` is the previous frame scaled in brightness (a step of a fade)."""
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
        prev, self._grey = self._grey, grey
        if prev is None:
            return False
        ratio = (float(grey.mean()) + 1.0) / (float(prev.mean()) + 1.0)
        if 1 / _FADE_RATIO <= ratio <= _FADE_RATIO:
            return False
        residual = float(np.abs(grey - prev * ratio).mean()) / (max(float(grey.mean()), float(prev.mean())) + 1.0)
        return residual < _FADE_RESIDUAL

    def update(self, frame: np.ndarray) -> int:
        """The 0-based shot index of the next frame.

        Args:
            frame: uint8 ``[H, W, 3]`` RGB; all frames of one video have the same size.

        Returns:
            The shot index (0 for the first frame, +1 at each cut or fade-in).

        Raises:
            ValueError: ``frame`` is not uint8 ``[H, W, 3]``.
        """
        from scenedetect.common import FrameTimecode

        small = self._small_bgr(frame)
        self._frame += 1
        tc = FrameTimecode(self._frame, fps=_COUNTER_FPS)
        content, strong, histogram, fade = (bool(d.process_frame(tc, small)) for d in
                                            (self._content, self._strong, self._histogram, self._fade))
        if self._fading(small):   # a fade step is the same picture darker or brighter: no cut by content
            content = strong = False
        cut = (content and histogram) or strong or fade
        if cut and self._frame > 0 and self._frame - self._shot_start >= self.min_shot_frames:
            self.shot, self._shot_start = self.shot + 1, self._frame
        return self.shot


def detect_shots(frames: Iterable[np.ndarray], **thresholds) -> np.ndarray:
    """Shot index of every frame of a sequence (:class:`ShotDetector` run over it).

    Args:
        frames: uint8 ``[H, W, 3]`` RGB frames in order (a list or a ``[T, H, W, 3]`` array).
        thresholds: :class:`ShotDetector` settings.

    Returns:
        ``int32 [T]`` non-decreasing 0-based shot indices.

    Raises:
        ValueError: a frame is not uint8 ``[H, W, 3]``, or a bad setting.
    """
    detector = ShotDetector(**thresholds)
    return np.asarray([detector.update(f) for f in frames], dtype=np.int32).reshape(-1)
