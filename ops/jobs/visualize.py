"""`faces visualize`: redraw annotated pictures from stored results and their source photos."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from faces.consumers.pictures import draw_picture
from faces.models.decode import ImageDecodeError, decode_image


@dataclass
class Visualized:
    drawn: int = 0
    unreadable: list[str] = field(default_factory=list)  # one line per result not drawn, and why


def visualize_folder(storage: Path, output: Path) -> Visualized:
    """Draw every ok result in `storage` onto its photo into `output`; every result whose photo
    (or which itself) could not be read is named, so that none goes missing silently."""
    done = Visualized()
    for result_file in sorted(storage.glob("*.json")):
        try:
            result = json.loads(result_file.read_text())
        except (OSError, ValueError) as exc:
            done.unreadable.append(f"cannot read result {result_file}: {_reason(exc)}")
            continue
        if not isinstance(result, dict) or result.get("status") != "ok":
            continue  # an error result has nothing to draw; other JSON is not a result
        path = result["image"]["path"]
        try:
            image = decode_image(Path(path).read_bytes())
        except (OSError, ImageDecodeError) as exc:
            done.unreadable.append(f"cannot read {path} (image {result['image_id']}): {_reason(exc)}")
            continue
        if draw_picture(output, result, image.pixels):
            done.drawn += 1
    return done


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
