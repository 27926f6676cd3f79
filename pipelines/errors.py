"""Failures as data: the dead-letter records that end in a run's ``errors.jsonl``."""
from __future__ import annotations

import traceback
from typing import Any


def error_record(sample: dict[str, Any] | None, stage: str, exc: BaseException, **extra) -> dict[str, Any]:
    """A dead-letter record for ``errors.jsonl``.

    Fields: corpus, sample_id, video_id, uri, stage, error_type, message (and ``extra``).
    """
    sample = sample or {}
    return {"corpus": sample.get("corpus"), "sample_id": sample.get("sample_id"),
            "video_id": sample.get("video_id"), "uri": sample.get("uri"), "stage": stage,
            "error_type": type(exc).__name__, "message": str(exc),
            "where": traceback.extract_tb(exc.__traceback__)[-1].name if exc.__traceback__ else None,
            **extra}
