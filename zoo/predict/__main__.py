"""``python -m zoo.predict``: runs :func:`zoo.predict.cli.main`.

``main`` is imported from its module, never defined here: everything a Beam worker unpickles (the
DoFn of :mod:`zoo.predict.beam`) must refer to ``zoo.predict.*``, never to ``__main__``.
"""
import sys

from zoo.predict.cli import main

if __name__ == "__main__":
    sys.exit(main())
