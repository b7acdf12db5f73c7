"""Life-story photos: prepared (upright, no EXIF, no bigger than PHOTO_MAX_SIDE), checked as sync brings them,
and opened for a worker who may see the child."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from storage import audit
from storage.child_forms import FormInvalid
from storage.models import Photo, Worker
from storage.store import NotAllowed, Store

# Phones take 12-megapixel photos; a life-story book needs far less, and sealed rows stay small.
PHOTO_MAX_SIDE = 1600
PHOTO_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
PHOTOS_PER_ENTRY = 6
# The largest photo sync takes. A prepared photo is at most about 1.8 MB (1600 px square of pure noise at
# quality 85; real photos are a few hundred KB): twice that and more, so none is refused.
PHOTO_MAX_SYNCED_BYTES = 4 * 1024 * 1024
# Photos kept with an offline draft come home in the draft's one request. The phone makes them no bigger than
# PHOTO_MAX_SIDE before sealing them (a few hundred KB each), so these caps only stop a draft Seen did not make.
DRAFT_PHOTO_MAX_BYTES = PHOTO_MAX_SYNCED_BYTES
DRAFT_PHOTOS_MAX_BYTES = 12 * 1024 * 1024  # all of one entry's photos together
IMAGE_MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}


def prepare_photo(data: bytes) -> bytes:
    """The photo as a JPEG no bigger than PHOTO_MAX_SIDE, turned upright; raises FormInvalid if not an image.

    Re-encoding also drops the camera's metadata (EXIF), which can hold where the photo was taken: a
    child's life-story photo must not carry their carers' address.
    """
    if len(data) > PHOTO_MAX_UPLOAD_BYTES:
        raise FormInvalid({"photo": "That photo is too big (over 25 MB). Take it again at a smaller size."})
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise FormInvalid({"photo": "That file is not a photo Seen can read. Choose a JPEG or PNG photo."}) from None
    upright.thumbnail((PHOTO_MAX_SIDE, PHOTO_MAX_SIDE))
    if upright.mode != "RGB":
        # Transparent PNGs go onto white, as they would look printed.
        background = Image.new("RGB", upright.size, "white")
        rgba = upright.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        upright = background
    out = io.BytesIO()
    upright.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB"


def prepare_draft_photos(photos: list[bytes]) -> list[bytes]:
    """The photos sent with an offline draft, each prepared as the screen prepares one (upright JPEG, no EXIF,
    no bigger than PHOTO_MAX_SIDE). Raises FormInvalid naming the first photo that is too big or not a photo.
    """
    total = sum(len(data) for data in photos)
    if total > DRAFT_PHOTOS_MAX_BYTES:
        raise FormInvalid({"photo": f"This entry's photos come to {_megabytes(total)}, more than Seen takes for one "
                                    f"entry ({_megabytes(DRAFT_PHOTOS_MAX_BYTES)}). Remove a photo, or put it in "
                                    "another entry."})
    prepared = []
    for number, data in enumerate(photos, start=1):
        which = f"Photo {number}" if len(photos) > 1 else "The photo"
        if len(data) > DRAFT_PHOTO_MAX_BYTES:
            raise FormInvalid({"photo": f"{which} is too big to send (over {_megabytes(DRAFT_PHOTO_MAX_BYTES)}). "
                                        "Remove it and take it again at a smaller size."})
        try:
            prepared.append(prepare_photo(data))
        except FormInvalid:
            raise FormInvalid({"photo": f"{which} is not a photo Seen can read. Remove it, and choose a JPEG or "
                                        "PNG photo."}) from None
    return prepared


def image_from_sync(photo_id: str, mime: str, encoded: Any) -> bytes:
    """A synced photo's image, from its change's base64; raises ValueError saying what is wrong with it.

    Sync takes only what `prepare_photo` makes (a JPEG, or a PNG from before it re-encoded everything),
    no bigger than a prepared photo can be, and of the type its record says: the bytes are served with
    that type, so a photo must not be something else (a page) in disguise.
    """
    what = f"The photo {photo_id}"
    if not isinstance(encoded, str) or not encoded:
        raise ValueError(f"{what} came without its image (an older version of Seen sends photos without "
                         "them): update Seen on the device that took it, then sync again.")
    if len(encoded) > PHOTO_MAX_SYNCED_BYTES * 4 // 3 + 4:
        raise ValueError(f"{what} is too big to sync (over {PHOTO_MAX_SYNCED_BYTES // (1024 * 1024)} MB); "
                         "Seen makes photos far smaller, so this one was not made by Seen.")
    try:
        image = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise ValueError(f"{what}'s image is not valid base64.") from None
    kind = next((m for m, magic in IMAGE_MAGIC.items() if image.startswith(magic)), None)
    if kind is None:
        raise ValueError(f"{what}'s image is not a JPEG or PNG photo.")
    if kind != mime:
        raise ValueError(f"{what} says it is {mime or 'of no type'} but its image is {kind}.")
    return image


def open_photo(store: Store, photo: Photo) -> bytes:
    return store.sealer.open_bytes("photo", photo.id, photo.sealed)


def photo_for_worker(store: Store, worker: Worker, photo_id: str) -> tuple[bytes, str]:
    """A photo's bytes and type, for a worker who may see its child; NotAllowed (audited) otherwise."""
    with store.session() as session:
        photo = session.get(Photo, photo_id)
        if photo is None:
            # Audited by session_scope once this transaction has rolled back, like every refusal.
            raise NotAllowed("That photo does not exist.", kind="photo", record_id=photo_id, worker_id=worker.id)
        store.child_for(session, worker, photo.child_id)
        audit.append(session, "read", "photo", photo.id, worker_id=worker.id, child_id=photo.child_id)
        return open_photo(store, photo), photo.mime
