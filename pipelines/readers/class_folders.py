"""Reader for folder-per-class trees: ``<root>/<split folder>/<class folder>/<media file>``.

CAER (Lee et al., ICCV 2019) is distributed this way (``train`` / ``validation`` / ``test``, one
folder per emotion, clips ``0001.avi`` ...), and so are CAER-S and the folder repackagings of
image corpora. The card's ``[layout]`` table gives ``split_dirs`` (our split -> folder name) and
``extensions``; class folders are matched to ``labels.names`` case-insensitively, or through
``[labels.codes]`` (folder name -> class name) when the card has one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from pipelines.readers.base import confine, fail, make_sample, media_files, require, resolve_code
from pipelines.samples import Sample


def read_class_folders(card: dict[str, Any], root: Path, problems: list | None = None, *,
                       allow_outside_root: bool = False) -> Iterator[Sample]:
    """Yield one sample per media file of a folder-per-class tree.

    Each file is a whole video (``end_s`` None), or an image for image cards. Problems: a
    missing split folder (``missing_file``), a class folder the card does not know
    (``unknown_label``; its files are skipped), an empty class folder is not a problem. Split
    and class folders and media files are confined to ``root``
    (:func:`pipelines.readers.base.confine`): links out of it (unless ``allow_outside_root``),
    broken and looping links are problems.

    Raises:
        CardError: the card lacks ``[layout] split_dirs``.
        CorpusError: a problem while ``problems`` is None.
    """
    split_dirs = require(card, "layout", "split_dirs")
    extensions = card["layout"].get("extensions", [".avi", ".mp4"])
    modality = card["corpus"].get("modality", "video")
    for split, folder_name in split_dirs.items():
        folder = confine(root, Path(root) / folder_name, problems, allow_outside_root=allow_outside_root,
                         source=f"{card['card_path']} [layout] split_dirs")
        if folder is None:
            continue
        if not folder.is_dir():
            fail(problems, "missing_file", folder, f"split folder for {split!r} is missing")
            continue
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() or p.is_symlink()):
            if confine(root, class_dir, problems, allow_outside_root=allow_outside_root) is None \
                    or not class_dir.is_dir():
                continue
            name, index = resolve_code(card, class_dir.name)
            if index is None or index < 0:
                if index is None:
                    continue  # a class the chosen label order leaves out
                fail(problems, "unknown_label", class_dir,
                     f"class folder {class_dir.name!r} is not one of {card['labels']['names']}")
                continue
            for media in media_files(class_dir, extensions, root, problems, allow_outside_root=allow_outside_root):
                extra = {"frames": (str(media.resolve()),)} if modality == "images" else {}
                yield make_sample(card, root, media, split, index, **extra)
