"""Artifacts shown in the Prefect UI: metrics tables, report links, provenance, per-item failures.

Keys must be lowercase letters, digits and dashes; :func:`slugify_key` makes one from any text.
These helpers are called inside a flow or task run.
"""

from __future__ import annotations

import base64

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

__all__ = [
    "slugify_key",
    "publish_table",
    "publish_link",
    "publish_provenance",
    "publish_failures",
    "publish_markdown",
    "publish_images",
]


def slugify_key(text: str) -> str:
    """An artifact key from ``text``: lowercase, runs of other characters replaced by one dash."""
    key = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    if not key:
        raise ValueError(f"cannot make an artifact key from {text!r}")
    return key


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # the UI's JSON cannot hold NaN/inf
    if isinstance(value, Path):
        return value.as_posix()
    if hasattr(value, "item"):
        return _cell(value.item())
    return value


def publish_table(rows: Any, *, key: str, description: str | None = None) -> None:
    """A table artifact from a ``pandas.DataFrame`` or a list of row mappings."""
    if hasattr(rows, "to_dict"):
        rows = rows.to_dict(orient="records")
    table = [{str(k): _cell(v) for k, v in row.items()} for row in rows]
    create_table_artifact(table=table, key=slugify_key(key), description=description)


def publish_link(path_or_url: str | Path, *, key: str, text: str | None = None, description: str | None = None) -> None:
    """A link artifact; a local path becomes a ``file://`` URL of its absolute path."""
    link = str(path_or_url)
    if "://" not in link:
        link = Path(link).resolve().as_uri()
    create_link_artifact(link=link, link_text=text or Path(str(path_or_url)).name, key=slugify_key(key),
                         description=description)


def publish_markdown(text: str, *, key: str, description: str | None = None) -> None:
    """A markdown artifact (e.g. the benchmark table from ``sem_core.report.summary_markdown``)."""
    create_markdown_artifact(markdown=text, key=slugify_key(key), description=description)


def publish_images(images: Mapping[str, bytes], *, key: str, out_dir: str | Path,
                   inline_limit_bytes: int = 2_000_000) -> list[Path]:
    """Key images: PNGs written to ``out_dir`` and shown in one markdown artifact.

    Each image is embedded as a data URI when smaller than ``inline_limit_bytes`` (the UI shows it
    inline), otherwise linked by its ``file://`` path. Returns the written files.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines, written = [f"# {key}", ""], []
    for name, png in images.items():
        path = out / f"{slugify_key(name)}.png"
        path.write_bytes(png)
        written.append(path)
        src = ("data:image/png;base64," + base64.b64encode(png).decode()) if len(png) < inline_limit_bytes \
            else path.resolve().as_uri()
        lines += [f"## {name}", "", f"![{name}]({src})", "", f"`{path}`", ""]
    create_markdown_artifact(markdown="\n".join(lines), key=slugify_key(key), description="key images")
    return written


def publish_provenance(provenance: Mapping[str, Any], *, key: str, title: str = "Provenance") -> None:
    """A markdown artifact showing a provenance record (from ``make_provenance``) as a table + JSON."""
    lines = [f"# {title}", "", "| field | value |", "|---|---|"]
    for name, value in provenance.items():
        shown = json.dumps(value, default=str) if isinstance(value, (Mapping, list)) else str(value)
        lines.append(f"| {name} | `{shown}` |")
    create_markdown_artifact(markdown="\n".join(lines), key=slugify_key(key), description=title)


def publish_failures(failures: Sequence[Mapping[str, Any]], *, key: str) -> None:
    """A markdown artifact listing failed items (``{"item", "error"}``) or saying there were none."""
    if not failures:
        text = "# Failures\n\nNone: every item completed."
    else:
        rows = "\n".join(f"| `{f.get('item')}` | {str(f.get('error')).replace('|', '/')} |" for f in failures)
        text = f"# Failures ({len(failures)})\n\n| item | error |\n|---|---|\n{rows}"
    create_markdown_artifact(markdown=text, key=slugify_key(key), description="items that failed")
