"""Paths in and out: output files and folders that fail as one line, and image files in, same names out (translate,
upscale), refusing any output that would land on an input."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from ganforge.errors import GanforgeError


def _reason(path: Path, error: OSError) -> str:
    """Why `path` cannot be written: a regular file where a folder is needed, else the system's reason."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file, not a folder"
            break
    return error.strerror or str(error)


def is_folder(path: Path) -> bool:
    """True for an existing folder; False for anything else, including names the system refuses (too long...)."""
    try:
        return path.is_dir()
    except OSError:
        return False


@contextlib.contextmanager
def writing(path: str | Path, folder: bool = False):
    """Create `path`'s folder (or `path` itself with folder=True) and turn any OSError while writing into one
    GanforgeError naming the path."""
    path = Path(path)
    try:
        (path if folder else path.parent).mkdir(parents=True, exist_ok=True)
        yield path
    except OSError as error:
        raise GanforgeError(f"cannot write {path}: {_reason(path, error)}") from None


def save_npz(path: Path, arrays: dict, labels=None) -> None:
    """Write `arrays` (and the labels, when given) as one compressed .npz (readable without pickle)."""
    if labels is not None:
        arrays = arrays | {"labels": np.asarray(labels)}
    with writing(path), open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def image_inputs(inputs: list[str | Path]) -> list[tuple[Path, Path]]:
    """(file, name to write) for image files and folders (searched recursively, names relative to the folder)."""
    from ganforge.data import IMAGE_SUFFIXES, list_images

    found = []
    for given in inputs:
        path = Path(given).expanduser()
        try:
            kind = "folder" if path.is_dir() else "file" if path.is_file() else None
        except OSError:  # e.g. a name longer than the system allows
            kind = None
        if kind == "folder":
            files = list_images(path)
            if not files:
                raise GanforgeError(f"{path}: no image files found")
            found += [(f, f.relative_to(path)) for f in files]
        elif kind == "file":
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise GanforgeError(f"{path}: not an image file (expected {', '.join(sorted(IMAGE_SUFFIXES))})")
            found.append((path, Path(path.name)))
        else:
            raise GanforgeError(f"{path}: no such file or folder")
    names = [str(name) for _, name in found]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise GanforgeError(f"two inputs would both be written as {duplicate}")
    return found


def refuse_overlap(inputs: list[str | Path], found: list[tuple[Path, Path]], out: str | Path) -> None:
    """Refuse an output folder that would overwrite an input or mix results into an input folder."""
    out = Path(out).expanduser().resolve()
    for given in inputs:
        folder = Path(given).expanduser().resolve()
        if is_folder(folder) and (out == folder or folder in out.parents):
            raise GanforgeError(f"output folder {out} is the input folder {folder} or inside it: the results would "
                                "overwrite or mix with the inputs; choose a folder outside it")
    sources = {file.resolve() for file, _ in found}
    for file, name in found:
        if (out / name).resolve() in sources:
            raise GanforgeError(f"output folder {out} would overwrite the input {out / name}; choose another folder")
