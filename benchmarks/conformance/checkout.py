"""Materialise a fetched repository (a bare git mirror, as the `fetch` tool brings) as a work tree, skipping blobs the
mirror does not hold (large binaries: example meshes, GIFs, tet grids). Prints what was skipped.

    python benchmarks/conformance/checkout.py GIT_DIR DEST
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def checkout(git_dir: Path, dest: Path) -> list[str]:
    listing = subprocess.run(["git", "--git-dir", str(git_dir), "ls-tree", "-r", "-z", "HEAD"], check=True,
                             capture_output=True).stdout.decode().split("\0")
    skipped = []
    for entry in filter(None, listing):
        meta, path = entry.split("\t", 1)
        mode, kind, sha = meta.split()
        if kind != "blob":
            continue
        blob = subprocess.run(["git", "--git-dir", str(git_dir), "cat-file", "blob", sha], capture_output=True,
                              check=False)
        if blob.returncode != 0:
            skipped.append(path)
            continue
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob.stdout)
        if mode == "100755":
            target.chmod(0o755)
    return skipped


if __name__ == "__main__":
    missing = checkout(Path(sys.argv[1]), Path(sys.argv[2]))
    head = subprocess.run(["git", "--git-dir", sys.argv[1], "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True)
    (Path(sys.argv[2]) / ".upstream_commit").write_text(head.stdout)
    print(f"{sys.argv[2]}: checked out {head.stdout.strip()[:8]}; {len(missing)} blob(s) not in the mirror: "
          + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
