"""Show that a change keeps what the extraction writes: ``python -m bench.compare_revisions A B``.

Extracts the same corpora at two commits and compares each pair of outputs with
:mod:`bench.compare_shards` (every HDF5 dataset, Parquet table and the manifest's content). Each
commit is checked out as a git worktree under ``--work`` and run with this checkout's Python
(so both share one environment). The corpora are built once, so both runs record the same paths:

========== ==================================================================================
run        corpus and flags
========== ==================================================================================
sample     the shipped sample (videos and card copied), every window
ewalk      STEP gaits in the EWalk layout (skeleton corpus)
rafdb      RAF-DB images with annotated face boxes
ckplus     CK+ image sequences (face detector on whole frames, folds)
friends    Friends clips with annotated boxes (VTT ``vtt_friends`` crop)
sample-pool  the sample with ``--face-pool --face-mask``, 8 windows
sample-3d  the sample with ``--body blazepose-ghum``, 3 windows
========== ==================================================================================

The fixture corpora are :mod:`tests.corpus_fixtures` trees with the small cards (32-px faces, 2
clips), made from the media in ``../shared/data`` (``$AFFECTZOO_SHARED``); without it only the
sample runs. Exit status 0 when every run is the same, 1 otherwise (the differences printed).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = ("ewalk", "rafdb", "ckplus", "friends")
SAMPLE_RUNS = {"sample": [], "sample-pool": ["--face-pool", "--face-mask", "--limit", "8"],
               "sample-3d": ["--body", "blazepose-ghum", "--limit", "3"]}


def build_corpora(work: Path, shared: Path | None) -> dict[str, list[str]]:
    """The corpora under ``work/corpora`` and each run's ``--dataset`` / ``--root`` arguments."""
    sys.path.insert(0, str(REPO))
    from tests.corpus_fixtures import BUILDERS, edited_card

    corpora = work / "corpora"
    shutil.rmtree(corpora, ignore_errors=True)
    (corpora / "sample").mkdir(parents=True)
    shutil.copytree(REPO / "samples" / "videos", corpora / "sample" / "videos")
    card = shutil.copy(REPO / "datasets" / "sample.toml", corpora / "sample" / "sample.toml")
    runs = {name: ["--dataset", str(card), "--root", str(corpora / "sample" / "videos"), *flags]
            for name, flags in SAMPLE_RUNS.items()}
    for name in FIXTURES if shared else ():
        root = corpora / name
        root.mkdir()
        BUILDERS[name](root, shared)
        runs[name] = ["--dataset", str(edited_card(name, corpora, {}, shrink=True)), "--root", str(root)]
    return runs


def extract_at(rev: str, work: Path, runs: dict[str, list[str]]) -> Path:
    """Extract every run at commit ``rev``; returns the folder of the outputs (one per run)."""
    tree, out = work / f"tree-{rev}", work / f"out-{rev}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--force", "--detach", str(tree), rev],
                       check=True, capture_output=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    for name, args in runs.items():
        shutil.rmtree(out / name, ignore_errors=True)
        cmd = [sys.executable, "-m", "pipelines.extract", "--no-progress", "--out", str(out / name), *args]
        done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
        print(f"{rev} {name}: exit {done.returncode}", flush=True)
        if done.returncode != 0:
            print(done.stderr[-2000:])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.compare_revisions", description=__doc__.split("\n")[0])
    ap.add_argument("a", help="the commit before the change")
    ap.add_argument("b", help="the commit after it")
    ap.add_argument("--work", type=Path, default=Path("/tmp/affectzoo-compare"), help="worktrees, corpora, outputs")
    args = ap.parse_args(argv)
    from bench.compare_shards import compare_runs

    shared = Path(os.environ.get("AFFECTZOO_SHARED", REPO.parent / "shared"))
    runs = build_corpora(args.work, shared if (shared / "data").is_dir() else None)
    outs = [extract_at(rev, args.work, runs) for rev in (args.a, args.b)]
    same = True
    for name in runs:
        try:
            diffs = compare_runs(outs[0] / name, outs[1] / name, 0.0, 0.0)
        except FileNotFoundError as exc:  # a run that failed wrote no manifest
            diffs = [str(exc)]
        print(f"{name}: {'same content' if not diffs else f'{len(diffs)} differences'}")
        for line in diffs[:20]:
            print("  " + line)
        same &= not diffs
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
