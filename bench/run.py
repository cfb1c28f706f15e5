"""Run every benchmark in bench/ (files named bench_*.py, each with a main()) and print their figures.

    .venv/bin/python bench/run.py [name-filter]
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def main() -> None:
    wanted = sys.argv[1] if len(sys.argv) > 1 else ""
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        if wanted not in path.stem:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"\n== {path.stem} ==", flush=True)
        module.main([])


if __name__ == "__main__":
    main()
