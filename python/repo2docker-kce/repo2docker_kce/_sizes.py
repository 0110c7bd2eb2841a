"""How big a repository is, for the build service's size limit (the runner's measurements and the adapter's
check of the build context)."""
import os

MAX_CONTEXT_ENV = "KCE_MAX_CONTEXT_BYTES"  # set by the runner for repo2docker, read by the adapter


def tree_bytes(path: str) -> int:
    """Bytes of the files under `path` (lstat sizes, symlinks not followed); files vanishing meanwhile are skipped."""
    total = 0
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:  # not there (yet, or any more), or not a directory
            continue
    return total
