"""Ingest real (noisy, clean) SEM pairs: discover, read, check, register; manifest + bad-item report.

No pixels are copied: the manifest records where each pair is, its content hashes, metadata, the data-bar
crop and the registration (shift of the clean image onto the noisy one, mean brightness offset). Nothing is
dropped silently: every file that does not end up in a good pair is listed in ``IngestResult.bad`` with why.

Modules: :mod:`.records` (result and error types), :mod:`.discover` (:func:`find_pairs`),
:mod:`.manifest` (:func:`ingest_pairs`, :func:`load_pair`), :mod:`.outputs` (manifest and report files).
"""

from __future__ import annotations

from .discover import find_pairs
from .manifest import ingest_pairs, load_pair
from .outputs import describe_dataset, read_manifest, summarise_result, write_ingest_outputs
from .records import IMAGE_SUFFIXES, BadItem, IngestError, IngestResult, PairListing

__all__ = [
    "IMAGE_SUFFIXES", "BadItem", "PairListing", "IngestResult", "IngestError", "find_pairs", "ingest_pairs",
    "load_pair", "describe_dataset", "summarise_result", "write_ingest_outputs", "read_manifest",
]
