"""Routes: PNG tiles and the read-only OME-Zarr proxy of an image's layers."""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from .deps import UNAUTHORIZED, ImageId, Read, SessionDep
from .models import Image
from .schemas import NAME
from .storage import KeyError_, validate_key
from .tiles import render_png, tile_slices


router = APIRouter()


class TileSize(IntEnum):
    small = 256
    large = 512




# ---- images ---------------------------------------------------------------------------------------------------

def _layer(session: Session, image_id: str, method: str) -> tuple[Image, str]:
    img = session.get(Image, image_id)
    if img is None:
        raise HTTPException(404, f"no image {image_id}")
    prefix = img.layers.get(method)
    if prefix is None:
        raise HTTPException(404, f"image {image_id} has no layer {method!r}; it has {sorted(img.layers)}")
    return img, prefix


@router.get("/images/{image_id}/tile", response_class=Response, responses={
    200: {"content": {"image/png": {}}, "description": "PNG tile"}, 404: {}, 422: {}, **UNAUTHORIZED}, tags=["images"])
async def get_tile(
    image_id: ImageId, request: Request, _: str = Read,
    method: Annotated[str, Query(pattern=NAME, description="noisy, clean or a method label")] = "noisy",
    level: Annotated[int, Query(ge=0, le=15)] = 0,
    row: Annotated[int, Query(ge=0, le=100_000)] = 0,
    col: Annotated[int, Query(ge=0, le=100_000)] = 0,
    size: TileSize = TileSize.small,
    vmin: Annotated[float | None, Query(ge=-1e12, le=1e12)] = None,
    vmax: Annotated[float | None, Query(ge=-1e12, le=1e12)] = None,
) -> Response:
    """A PNG tile of ``method``'s layer at pyramid ``level`` (edge tiles are smaller); contrast window
    ``[vmin, vmax]`` in stored units (default: the dtype's range). Cached in memory and by the client."""
    size = int(size)
    if vmin is not None and vmax is not None and not vmax > vmin:
        raise HTTPException(422, "vmax must be greater than vmin")
    key = (image_id, method, level, row, col, size, vmin, vmax)
    png = request.app.state.tiles.get(key)
    if png is None:
        png = await run_in_threadpool(_render_tile, request, key)
        request.app.state.tiles.put(key, png)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=86400, immutable",
                                                          "X-Content-Type-Options": "nosniff"})


def _render_tile(request: Request, key: tuple) -> bytes:
    image_id, method, level, row, col, size, vmin, vmax = key
    session = request.app.state.sessions()
    try:
        img, prefix = _layer(session, image_id, method)
    finally:
        session.close()
    if level >= img.levels:
        raise HTTPException(404, f"image {image_id} has levels 0..{img.levels - 1}")
    store = request.app.state.store
    arr = store.open_array(f"{prefix}/{level}")
    sl = tile_slices(tuple(arr.shape[-2:]), row=row, col=col, size=size)
    if sl is None:
        raise HTTPException(404, f"tile ({row}, {col}) of size {size} is outside level {level} "
                                 f"of shape {tuple(arr.shape[-2:])}")
    return render_png(store.read_region(f"{prefix}/{level}", *sl), vmin=vmin, vmax=vmax)


@router.get("/images/{image_id}/zarr/{method}/{key:path}", response_class=Response, responses={
    200: {"content": {"application/json": {}, "application/octet-stream": {}}}, 404: {}, 400: {}, **UNAUTHORIZED},
    tags=["images"])
def get_zarr_key(image_id: ImageId, method: Annotated[str, Path(pattern=NAME)],
                 key: Annotated[str, Path(description="a key of the OME-Zarr group, e.g. zarr.json or 0/c/0/0")],
                 request: Request, session: SessionDep, _: str = Read) -> Response:
    """Read-only OME-Zarr (v3) access to one layer, key by key, so clients open it lazily over HTTP.
    Keys that are not plain relative names (``..``, hidden, absolute) are answered 404 like missing ones."""
    try:
        validate_key(key)
    except KeyError_:
        raise HTTPException(404, "no such key") from None
    _, prefix = _layer(session, image_id, method)
    try:
        data = request.app.state.store.get_bytes(f"{prefix}/{key}")
    except FileNotFoundError:
        raise HTTPException(404, f"no key {key!r} in layer {method!r}") from None
    media = "application/json" if key.endswith("zarr.json") else "application/octet-stream"
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=86400, immutable",
                                                     "X-Content-Type-Options": "nosniff"})
