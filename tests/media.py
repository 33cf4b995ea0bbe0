"""Documents made in the tests: phone photos with EXIF orientation and GPS, PDFs, bad files."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def phone_photo(color: str = "white", size: tuple[int, int] = (400, 300), orientation: int = 6) -> bytes:
    """A JPEG as a phone stores it: pixels sideways, EXIF orientation, GPS position."""
    img = Image.new("RGB", size, color)
    ImageDraw.Draw(img).rectangle((0, 0, 60, 60), fill=(255, 0, 0))  # a red block top-left
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[GPS_IFD] = {1: "N", 2: (29.0, 51.0, 30.0), 3: "E", 4: (121.0, 33.0, 12.0)}
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=90)
    return buf.getvalue()


def pdf_page() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (600, 800), "white").save(buf, "PDF")
    return buf.getvalue()


def bomb_png(side: int = 20000) -> bytes:
    buf = io.BytesIO()
    Image.new("1", (side, side), 0).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def has_gps(data: bytes) -> bool:
    img = Image.open(io.BytesIO(data))
    return bool(img.getexif().get_ifd(GPS_IFD)) or b"GPS" in data
