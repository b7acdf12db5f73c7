"""Seen's app icons, drawn with Pillow at start-up: nothing is downloaded and no binary is committed.

The mark is an open eye (the child is *seen*) in white on Seen's blue. The "any" icons are a rounded
square; the maskable ones fill the whole square and keep the eye inside the central 80% safe zone,
so a phone's launcher can crop them to any shape.
"""

from __future__ import annotations

import io
from functools import cache

from PIL import Image, ImageDraw

BLUE = (29, 79, 145, 255)
WHITE = (255, 255, 255, 255)
SIZES = (192, 512)
SUPERSAMPLE = 2  # drawn large and scaled down, for smooth edges


def _draw_eye(draw: ImageDraw.ImageDraw, size: int, scale: float) -> None:
    """An almond eye with a round iris, `scale` of the canvas wide, centred."""
    c = size / 2
    w = size * scale / 2
    h = w * 0.62
    # The almond: two circle arcs meeting at the corners, drawn as an ellipse is close enough at icon size.
    draw.ellipse((c - w, c - h, c + w, c + h), fill=WHITE)
    r = h * 0.78
    draw.ellipse((c - r, c - r, c + r, c + r), fill=BLUE)
    p = r * 0.45
    draw.ellipse((c - p, c - p, c + p, c + p), fill=WHITE)


@cache
def icon_png(size: int, maskable: bool = False) -> bytes:
    """The PNG bytes of one icon; cached, so each is drawn once per process."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if maskable:
        draw.rectangle((0, 0, big, big), fill=BLUE)
        _draw_eye(draw, big, 0.56)  # inside the 80% safe circle
    else:
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 0.2, fill=BLUE)
        _draw_eye(draw, big, 0.7)
    image = image.resize((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def icon_name(size: int, maskable: bool = False) -> str:
    return f"{'maskable' if maskable else 'icon'}-{size}.png"


ICONS = {icon_name(s, m): (s, m) for s in SIZES for m in (False, True)}
