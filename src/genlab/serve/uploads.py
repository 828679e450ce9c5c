"""Uploaded images: the form of an image-to-image request, its images decoded within the
server's limits, and the PNG of the answer.

POST /v1/models/{name}/translate takes `multipart/form-data`, what a browser's FormData and
`curl -F image=@photo.jpg -F alpha=0.5` send: a file field per image input of the model
(contract.Translator.translate_inputs: `image`, and `style` for AdaIN) and a text field per
translate option. werkzeug's multipart parser (werkzeug comes with Flask, in the serve extra;
FastAPI's form parsing would need python-multipart) reads it for both apps, from the body the
app has already read within the size and time limits, so both apps answer every upload alike.

An image is measured from its header before it is decoded: more pixels than the limit is a
413, so a small file that would decode to gigabytes (a "decompression bomb") never is. A file
that is not an image of the formats below is a 415 (PIL knows more, but some it decodes by
running another program), a truncated or corrupt one a 400. Every problem is a ServeError with
a one-line message naming the field.
"""

from __future__ import annotations

import io
from typing import Any

import torch
from torch import Tensor

from genlab.data.folder import SAFE_FORMATS
from genlab.serve.service import ServeError

FORM = "multipart/form-data"
MAX_PARTS = 64  # form fields per request: a model has a few inputs and options
FORMATS = "PNG, JPEG, BMP, GIF, WebP, TIFF"


def _in_memory(*args: Any, **kwargs: Any) -> io.BytesIO:
    """werkzeug's stream factory: parts stay in memory (the body is within its limit)."""
    return io.BytesIO()


def read_form(content_type: str | None, body: bytes) -> tuple[dict[str, bytes], dict[str, str]]:
    """(files by field name, text fields by name) of a multipart/form-data body: 415 for
    another content type, 400 for a malformed form, 422 for a field without a name or given
    twice, 413 for more than MAX_PARTS fields."""
    from werkzeug.exceptions import RequestEntityTooLarge
    from werkzeug.formparser import FormDataParser
    from werkzeug.http import parse_options_header

    mimetype, options = parse_options_header(content_type or "")
    if mimetype != FORM:
        raise ServeError(
            415,
            f"send the images as {FORM} (file fields such as image=@photo.png), "
            f"not {mimetype or 'a body without a content type'}",
        )
    parser = FormDataParser(stream_factory=_in_memory, silent=False, max_form_parts=MAX_PARTS)
    try:
        _, form, files = parser.parse(io.BytesIO(body), mimetype, len(body), options)
    except ValueError as e:  # no boundary, or the body is not a form with that boundary
        raise ServeError(400, f"malformed {FORM} body ({e})") from None
    except RequestEntityTooLarge:
        raise ServeError(413, f"more than {MAX_PARTS} form fields") from None
    for name, values in [*form.lists(), *files.lists()]:
        if not name:
            raise ServeError(422, "a form field without a name")
        if len(values) > 1 or (name in form and name in files):
            raise ServeError(422, f"{name}: given more than once")
    return {name: part.read() for name, part in files.items()}, dict(form.items())


def check_fields(
    name: str, inputs: tuple[str, ...], options: list[str], files: dict, fields: dict
) -> None:
    """422 unless the form has a file for every image input of model `name` and, besides, only
    text fields named after its options."""
    takes = f"{name} takes the files {', '.join(inputs)}" + (
        f" and the fields {', '.join(options)}" if options else ""
    )
    for field in [*files, *fields]:
        if field not in inputs and field not in options:
            raise ServeError(422, f"{field}: unknown field ({takes})")
    for field in inputs:
        if field in fields:
            raise ServeError(422, f"{field}: send a file here, not text ({takes})")
        if field not in files:
            raise ServeError(422, f"{field}: missing ({takes})")
    for field in options:
        if field in files:
            raise ServeError(422, f"{field}: a text field, not a file")


def decode_image(field: str, data: bytes, max_pixels: int) -> Tensor:
    """An uploaded image file as float (3, H, W) in [0, 1] (grey and palette images as RGB,
    transparency over black, EXIF orientation applied, as genlab reads image files)."""
    from PIL import Image, UnidentifiedImageError

    from genlab.data.folder import decode_image as decode_file

    if not data:
        raise ServeError(400, f"{field}: the file is empty")
    Image.init()  # every format plugin registered (open's `formats` looks them up)
    try:
        with Image.open(io.BytesIO(data), formats=SAFE_FORMATS) as opened:  # the header only
            width, height = opened.size
    except UnidentifiedImageError:
        raise ServeError(415, f"{field}: not an image ({FORMATS})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # PIL's own limit (a warning that tests turn into an error), far over the server's
        raise ServeError(413, f"{field}: {e}") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ServeError(400, f"{field}: corrupt image ({type(e).__name__}: {e})") from None
    if width * height > max_pixels:
        raise ServeError(
            413,
            f"{field}: {width}x{height} is {width * height} pixels, over the {max_pixels}"
            " pixel limit; resize it first",
        )
    try:
        picture = decode_file(io.BytesIO(data), 3, formats=SAFE_FORMATS)
    except (OSError, ValueError, SyntaxError) as e:
        raise ServeError(400, f"{field}: corrupt image ({type(e).__name__}: {e})") from None
    array = torch.frombuffer(bytearray(picture.tobytes()), dtype=torch.uint8)
    return array.view(picture.height, picture.width, 3).permute(2, 0, 1).float() / 255


def encode_png(image: Tensor) -> bytes:
    """(C, H, W) floats in [0, 1] (C = 1 or 3) -> PNG bytes."""
    from genlab.imaging import to_pil, to_uint8

    buffer = io.BytesIO()
    to_pil(to_uint8(image.float().cpu()).numpy()).save(buffer, format="PNG")
    return buffer.getvalue()
