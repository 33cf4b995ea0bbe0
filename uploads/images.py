"""材料图片处理 — the Pillow pipeline for uploaded documents (bytes in, bytes out).

Community workers photograph residents' ID cards and household registers during a call; a
clerk looks at them. Everything here is synchronous, pure CPU work: the caller runs it in a
thread or process pool, never on the event loop. Nothing here knows about the server.

What comes back (`Processed`):

* ``clean_original`` is what the caller stores as "the original": the image with EXIF
  orientation applied, its long side limited to ``long_side`` (a 12-megapixel photo keeps every
  pixel) and every piece of metadata removed (EXIF including GPS, XMP, comments, ICC). Images
  are refused above ``max_pixels``. JPEG for JPEG/WebP/HEIC input, PNG for PNG input; PDFs are
  returned unchanged. ``original_sha256`` is the hash of the bytes exactly as uploaded.
* ``viewing`` is a JPEG for the clerk's screen, reduced by a whole number so its long side is at
  most ``viewing_side`` (2000 px for a 4000×3000 photo), with the tiled watermark;
  ``thumbnail`` is the same picture scaled to ``thumb_side``.
* ICC profiles are *applied* and then dropped: pixels are converted to sRGB with LittleCMS,
  so a Display P3 phone photo looks right everywhere and no profile travels with the file.
* ``width``/``height`` describe the upload as a person sees it: pixels after EXIF orientation
  and before any resizing for images; page 1 in PDF points (1/72 inch) for PDFs.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import math
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image, ImageCms, ImageDraw, ImageFile, ImageFont, ImageOps, UnidentifiedImageError

# A truncated upload is refused, never padded with grey. This is Pillow's default; it is set
# here because the flag is process-wide and the pipeline depends on it.
ImageFile.LOAD_TRUNCATED_IMAGES = False

SNIFF_BYTES = 64
"""How many leading bytes `sniff` needs to see (the HEIF ftyp box with its brands)."""

RejectCode = Literal["unsupported_type", "corrupt_file", "too_many_pixels", "pdf_unreadable"]

_MESSAGES: dict[str, str] = {
    "unsupported_type": "不支持的文件类型，请上传 JPEG、PNG、WebP、HEIC 图片或 PDF 文件",
    "corrupt_file": "文件已损坏或不完整，请重新拍摄或上传",
    "too_many_pixels": "图片尺寸过大，请缩小后重新上传",
    "pdf_unreadable": "无法读取该 PDF 文件（可能已加密或损坏），请重新上传",
}


class Rejected(Exception):
    """An upload we refuse: ``code`` is for programs and tests, ``message`` for people."""

    def __init__(self, code: RejectCode, detail: str = "") -> None:
        self.code = code
        self.message = _MESSAGES[code]
        self.detail = detail
        super().__init__(f"{code}: {detail}" if detail else code)

    def __reduce__(self) -> tuple[type[Rejected], tuple[RejectCode, str]]:
        return (Rejected, (self.code, self.detail))  # crosses the process pool intact


class CjkFontMissing(RuntimeError):
    """No font can draw the Chinese watermark: a deployment problem, not the uploader's."""


@dataclass(frozen=True, slots=True)
class Processed:
    """处理结果 — what the caller stores and shows; see the module docstring for each field."""

    content_type: str
    original_sha256: str
    clean_original: bytes = field(repr=False)
    clean_content_type: str
    viewing: bytes = field(repr=False)
    thumbnail: bytes = field(repr=False)
    width: int
    height: int
    page_count: int | None = None
    viewing_content_type: str = "image/jpeg"
    thumbnail_content_type: str = "image/jpeg"


# ---------------------------------------------------------------------------------------------
# Sniffing

_HEVC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
_GENERIC_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
# HEIF containers holding something other than HEVC; libheif here decodes HEVC only.
_OTHER_CODEC_BRANDS = frozenset({b"avif", b"avis", b"avio", b"jpeg", b"jpgs", b"j2ki", b"j2is",
                                 b"vvic", b"vvis"})


def sniff(head: bytes) -> str | None:
    """The type of a file judged by its first bytes alone (names and declared types lie)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if _is_heic(head):
        return "image/heic"
    return None


def _is_heic(head: bytes) -> bool:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return False
    box_size = int.from_bytes(head[:4], "big")
    if box_size < 16 or box_size % 4:
        return False
    major = head[8:12]
    if major in _HEVC_BRANDS:
        return True
    if major not in _GENERIC_HEIF_BRANDS:
        return False
    compatible = {head[i:i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    return bool(compatible & _HEVC_BRANDS) or not compatible & _OTHER_CODEC_BRANDS


# ---------------------------------------------------------------------------------------------
# Processing

_PILLOW_FORMATS: dict[str, tuple[str, frozenset[str]]] = {
    # sniffed type -> (Pillow plugin to open with, formats it may report)
    "image/jpeg": ("JPEG", frozenset({"JPEG", "MPO"})),  # phones write MPO: JPEG + depth map
    "image/png": ("PNG", frozenset({"PNG"})),
    "image/webp": ("WEBP", frozenset({"WEBP"})),
    "image/heic": ("HEIF", frozenset({"HEIF"})),
}
# What decoders raise on bad input (pillow-heif reports libheif errors as ValueError); the same
# family Pillow's own open() treats as "not this format".
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)

VIEWING_QUALITY = 85
THUMBNAIL_QUALITY = 80
CLEAN_JPEG_QUALITY = 92


def process(
    data: bytes,
    *,
    max_pixels: int = 40_000_000,
    long_side: int = 4096,
    viewing_side: int = 2560,
    thumb_side: int = 320,
    watermark: str | None = None,
    font_path: str | None = None,
) -> Processed:
    """Check, clean and render one uploaded document. Raises `Rejected` for bad uploads."""
    content_type = sniff(data[:SNIFF_BYTES])
    if content_type is None:
        raise Rejected("unsupported_type", "no known signature")
    if watermark is not None:
        watermark = " ".join(watermark.split()) or None
    if watermark is not None:
        font_path = font_path or find_cjk_font()
        _check_coverage(font_path, watermark)
    sha256 = hashlib.sha256(data).hexdigest()
    if content_type == "application/pdf":
        page, page_count, (width, height) = _render_pdf(data, max_pixels, min(long_side, viewing_side))
        clean, clean_type = data, content_type
    else:
        image = _decode(data, content_type, max_pixels)
        width, height = image.size  # as uploaded (upright); the stored copies may be smaller
        image = _fit(image, long_side)
        clean, clean_type = _encode_clean(image, content_type)
        page, page_count = _reduce_to(image, viewing_side), None
    if watermark is not None and font_path is not None:
        _stamp(page, watermark, font_path)
    thumb = _fit(page, thumb_side)
    return Processed(
        content_type=content_type,
        original_sha256=sha256,
        clean_original=clean,
        clean_content_type=clean_type,
        viewing=_jpeg(page, VIEWING_QUALITY),
        thumbnail=_jpeg(thumb, THUMBNAIL_QUALITY),
        width=width,
        height=height,
        page_count=page_count,
    )


@functools.cache
def _register_heif() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()


def _decode(data: bytes, content_type: str, max_pixels: int) -> Image.Image:
    """Header check, full decode, orientation, sRGB: an upright RGB image without metadata."""
    plugin, reported = _PILLOW_FORMATS[content_type]
    if plugin == "HEIF":
        _register_heif()
    try:
        image: Image.Image = Image.open(io.BytesIO(data), formats=[plugin])
    except Image.DecompressionBombError as exc:
        raise Rejected("too_many_pixels", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise Rejected("unsupported_type", f"not a {plugin} despite its signature") from exc
    except _DECODE_ERRORS as exc:
        raise Rejected("corrupt_file", f"{type(exc).__name__}: {exc}") from exc
    if image.format not in reported:
        raise Rejected("unsupported_type", f"{plugin} signature but {image.format} content")
    w, h = image.size
    if w < 1 or h < 1:
        raise Rejected("corrupt_file", f"empty image {w}x{h}")
    if w * h > max_pixels:  # still only the header has been read
        raise Rejected("too_many_pixels", f"{w}x{h} > {max_pixels} pixels")
    try:
        image.load()
        icc = image.info.get("icc_profile")
        ImageOps.exif_transpose(image, in_place=True)
        image = _to_srgb(image, icc)
    except Image.DecompressionBombError as exc:
        raise Rejected("too_many_pixels", str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise Rejected("corrupt_file", f"{type(exc).__name__}: {exc}") from exc
    image.info = {}  # savers read comments, ICC and transparency from here
    return image


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """Flatten transparency onto white, apply the ICC profile if any, end in RGB."""
    if image.mode.startswith("I") or image.mode == "F":  # 16-bit and float greys
        image = image.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBa", "La", "LA", "PA"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image).convert("RGB")
    if icc and image.mode in ("RGB", "L", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                image, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
        except ImageCms.PyCMSError:
            converted = None  # a broken or mismatched profile: fall back to the plain conversion
        if converted is not None:
            image = converted
    return image if image.mode == "RGB" else image.convert("RGB")


def _encode_clean(image: Image.Image, content_type: str) -> tuple[bytes, str]:
    buf = io.BytesIO()
    if content_type == "image/png":
        image.save(buf, "PNG")
        return buf.getvalue(), "image/png"
    image.save(buf, "JPEG", quality=CLEAN_JPEG_QUALITY)
    return buf.getvalue(), "image/jpeg"


def _reduce_to(image: Image.Image, side: int) -> Image.Image:
    """Shrink by the smallest whole number that brings the long side to at most ``side``.

    A whole-number reduction averages blocks of pixels: sharp, free of aliasing, and about
    fifteen times quicker than a Lanczos resize of a 12-megapixel photo (``bench/uploads.py``),
    at the price of a long side between half of ``side`` and ``side``.
    """
    factor = math.ceil(max(image.size) / side)
    return image if factor <= 1 else image.reduce(factor)


def _fit(image: Image.Image, side: int) -> Image.Image:
    """Scale down so the long side is at most ``side``; never scale up."""
    w, h = image.size
    scale = side / max(w, h)
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# PDF

# PDFium is not thread-safe, not even across different documents (pypdfium2 docs, "Python
# API / Incompatibility with Threading"), so PDF work is serialised within a process.
_PDFIUM_LOCK = threading.Lock()


def _render_pdf(
    data: bytes, max_pixels: int, long_side: int
) -> tuple[Image.Image, int, tuple[int, int]]:
    """Page 1 rendered with its long side at ``long_side`` px, the page count, page 1 in pt."""
    import pypdfium2 as pdfium

    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise Rejected("pdf_unreadable", str(exc)) from exc
        try:
            page_count = len(pdf)
            if page_count < 1:
                raise Rejected("pdf_unreadable", "no pages")
            page = pdf[0]
            try:
                w_pt, h_pt = page.get_size()
                if not (math.isfinite(w_pt) and math.isfinite(h_pt) and w_pt > 0 and h_pt > 0):
                    raise Rejected("pdf_unreadable", f"page size {w_pt}x{h_pt}")
                scale = long_side / max(w_pt, h_pt)
                pixels = math.ceil(w_pt * scale) * math.ceil(h_pt * scale)
                if pixels > max_pixels:
                    raise Rejected("too_many_pixels", f"page 1 renders to {pixels} pixels")
                bitmap = page.render(scale=scale, may_draw_forms=True)
                try:
                    image = bitmap.to_pil().convert("RGB")  # a copy, independent of PDFium
                finally:
                    bitmap.close()
            except pdfium.PdfiumError as exc:
                raise Rejected("pdf_unreadable", str(exc)) from exc
            finally:
                page.close()
        finally:
            pdf.close()
    return image, page_count, (round(w_pt), round(h_pt))


# ---------------------------------------------------------------------------------------------
# Watermark

WATERMARK_ANGLE = 30.0
WATERMARK_OPACITY = 0.36
_INK = 40  # dark text ...
_HALO = 255  # ... with a light outline, so it reads on light and dark paper alike

_CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
_CJK_PROBE = "仅供高龄津贴申领办理使用"


@functools.cache
def find_cjk_font() -> str:
    """Path of a font that draws Simplified Chinese: Debian's fonts-noto-cjk first.

    Only a success is cached, so installing the package fixes a running process.
    """
    for path in itertools.chain(_CJK_FONT_CANDIDATES, _font_files(_FONT_DIRS)):
        if os.path.isfile(path) and _face_index(path) is not None:
            return path
    raise CjkFontMissing(
        "no font with Chinese glyphs for the watermark; install one with "
        "`apt-get install fonts-noto-cjk` or pass font_path"
    )


def _font_files(roots: tuple[str, ...]) -> Iterator[str]:
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                if name.lower().endswith((".ttc", ".otf", ".ttf")):
                    yield os.path.join(dirpath, name)


def _face_index(path: str) -> int | None:
    """The face of a font file (collections hold several) to use: the SC one if present."""
    stat = os.stat(path)  # keyed on the file's identity: a half-installed font is retried
    return _face_index_of(path, stat.st_mtime_ns, stat.st_size)


@functools.cache
def _face_index_of(path: str, mtime_ns: int, size: int) -> int | None:
    covering: list[tuple[int, str]] = []
    for index in range(32):
        try:
            font = ImageFont.truetype(path, 24, index=index)
        except OSError:
            break
        if _missing_glyphs(font, _CJK_PROBE):
            continue
        family = font.getname()[0] or ""
        covering.append((index, family))
    for index, family in covering:
        if family.endswith((" SC", " CN", " GB")) and "Mono" not in family:
            return index
    return covering[0][0] if covering else None


def _missing_glyphs(font: ImageFont.FreeTypeFont, text: str) -> str:
    """Characters the font draws as its "missing glyph" box (or not at all)."""
    notdef = font.getmask(chr(0x10FFFD))
    reference = (notdef.size, bytes(notdef))
    missing = []
    for char in dict.fromkeys(text):
        if char.isspace():
            continue
        mask = font.getmask(char)
        if mask.size[0] * mask.size[1] == 0 or (mask.size, bytes(mask)) == reference:
            missing.append(char)
    return "".join(missing)


def _check_coverage(font_path: str, text: str) -> None:
    try:
        font = ImageFont.truetype(font_path, 24, index=_face_index(font_path) or 0)
    except OSError as exc:
        raise CjkFontMissing(f"cannot load font {font_path}: {exc}") from exc
    if missing := _missing_glyphs(font, text):
        raise CjkFontMissing(
            f"font {font_path} cannot draw {missing!r}; "
            "`apt-get install fonts-noto-cjk` or pass another font_path"
        )


def _stamp(image: Image.Image, text: str, font_path: str) -> None:
    """Tile ``text`` across ``image`` (in place): translucent, rotated, edge to edge.

    The text is drawn and rotated once (and kept: a worker process stamps the same text at the
    same size for every photo of a case), then its masks are pasted on a lattice that runs along
    the slant, every other row shifted by half a step, so no part of the page is left unmarked.
    The page is then painted twice through those masks with a solid colour (light halo, dark
    ink); no full-size colour layer is ever built.
    """
    w, h = image.size
    size = _stamp_size(text, font_path, min(w, h))
    fill_stamp, halo_stamp, (tw, th) = _rotated_stamp(text, font_path, size)
    sw, sh = fill_stamp.size

    theta = math.radians(WATERMARK_ANGLE)
    cos, sin = math.cos(theta), math.sin(theta)
    along, across = tw + 3 * size, th + 3 * size
    reach = math.hypot(w, h) / 2 + max(sw, sh)
    n_along, n_across = math.ceil(reach / along) + 1, math.ceil(reach / across) + 1
    fill = Image.new("L", (w, h))
    halo = Image.new("L", (w, h))
    for j in range(-n_across, n_across + 1):
        shift = (j % 2) * along / 2
        for i in range(-n_along, n_along + 1):
            a, b = i * along + shift, j * across  # along the text, across the rows
            x0 = round(w / 2 + a * cos + b * sin - sw / 2)
            y0 = round(h / 2 - a * sin + b * cos - sh / 2)
            if x0 >= w or y0 >= h or x0 + sw <= 0 or y0 + sh <= 0:
                continue
            box = (x0, y0, x0 + sw, y0 + sh)
            fill.paste(255, box, fill_stamp)  # "over", so neighbouring boxes may overlap
            halo.paste(255, box, halo_stamp)
    if image.mode == "L":
        image.paste(_HALO, (0, 0), halo)
        image.paste(_INK, (0, 0), fill)
    else:
        image.paste((_HALO,) * 3, (0, 0), halo)
        image.paste((_INK,) * 3, (0, 0), fill)


def _stamp_size(text: str, font_path: str, short: int) -> int:
    """The font size: the text spans about 60% of the short side, within readable bounds."""
    text_em = _text_em(text, font_path)
    size = round(0.6 * short / text_em)
    return max(12, short // 60, min(size, short // 14))


@functools.lru_cache(maxsize=64)
def _text_em(text: str, font_path: str) -> float:
    probe = ImageFont.truetype(font_path, 100, index=_face_index(font_path) or 0)
    return (probe.getlength(text) or 100) / 100


@functools.lru_cache(maxsize=16)
def _rotated_stamp(
    text: str, font_path: str, size: int
) -> tuple[Image.Image, Image.Image, tuple[int, int]]:
    """The text's ink and halo masks, rotated, already scaled by the watermark's opacity."""
    font = ImageFont.truetype(font_path, size, index=_face_index(font_path) or 0)
    halo = max(1, round(size / 14))
    left, top, right, bottom = font.getbbox(text, stroke_width=halo)
    tw, th = int(right - left), int(bottom - top)
    fill_mask = Image.new("L", (tw, th))
    ImageDraw.Draw(fill_mask).text((-left, -top), text, font=font, fill=255)
    halo_mask = Image.new("L", (tw, th))
    ImageDraw.Draw(halo_mask).text(
        (-left, -top), text, font=font, fill=255, stroke_width=halo, stroke_fill=255
    )
    bicubic = Image.Resampling.BICUBIC
    opacity = [round(v * WATERMARK_OPACITY) for v in range(256)]
    fill_stamp = fill_mask.rotate(WATERMARK_ANGLE, bicubic, expand=True).point(opacity)
    halo_stamp = halo_mask.rotate(WATERMARK_ANGLE, bicubic, expand=True).point(opacity)
    return fill_stamp, halo_stamp, (tw, th)
