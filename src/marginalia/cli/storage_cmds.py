"""Object and annotation commands: put, get, ls, rm, cp, annotate, annotations, unannotate, mb.

They work on whatever store ``MARGINALIA_STORE`` names (a local directory by default, or S3), through
:func:`marginalia.config.open_store`. Bad input raises a :class:`~marginalia.errors.MarginaliaError`,
which :func:`marginalia.cli.app.run` prints as one line on stderr with exit status 2.
"""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

import typer
from rich.table import Column, Table
from rich.text import Text

from ..config import open_store
from ..errors import InvalidInput
from ..redact import printable
from ..storage import rules
from ..storage.base import AnnotationDirective, AnnotationInfo, ObjectInfo, Store
from ..uri import parse_uri, validate_bucket
from .app import app, console
from .formatting import print_table
from .params import object_uri, prefix_uri

_STDIO = "-"


def _store() -> Store:
    """The store MARGINALIA_STORE names; use it in ``with`` (a Store closes itself on exit)."""
    return open_store()


def _binary(stream):
    """The byte stream under a text stream (payloads and objects are written byte-exact)."""
    return getattr(stream, "buffer", stream)


def _when(info: ObjectInfo | AnnotationInfo) -> str:
    return info.last_modified.strftime("%Y-%m-%d %H:%M:%S")


def _object_json(info: ObjectInfo) -> dict:
    return {
        "key": info.key,
        "size": info.size,
        "last_modified": info.last_modified.isoformat(),
        "etag": info.etag,
        "version_id": info.version_id,
    }


def _annotation_json(info: AnnotationInfo) -> dict:
    return {
        "name": info.name,
        "size": info.size,
        "etag": info.etag,
        "last_modified": info.last_modified.isoformat(),
        "version_id": info.version_id,
        "checksum_algorithm": info.checksum_algorithm,
    }


def _payload_value(text: str):
    """An annotation payload inside a ``--json`` document: the JSON value when it is JSON (not a
    string holding JSON, which a script would have to decode twice), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _say(message: str, *, style: str | None = None) -> None:
    """One status line, never re-wrapped (URIs and ETags stay copy-pasteable)."""
    console.print(Text(printable(message), style=style or ""), highlight=False, soft_wrap=True)


def _write_stdout(chunks: Iterable[bytes]) -> None:
    """Bytes to stdout exactly as stored (objects, payloads), flushed before the command returns."""
    out = _binary(sys.stdout)
    for chunk in chunks:
        out.write(chunk)
    out.flush()


def _print_json(value) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _regular_file(path: Path, what: str) -> None:
    """InvalidInput unless ``path`` is a regular file: says whether it is missing, a directory or a device."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InvalidInput(f"{what} {str(path)!r}: no such file") from None
    except OSError as exc:
        raise InvalidInput(f"{what} {str(path)!r}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise InvalidInput(f"{what} {str(path)!r}: is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise InvalidInput(f"{what} {str(path)!r}: is a device or special file, not a regular file")


def _read_limited(stream, what: str) -> bytes:
    """Read at most 1 MiB + 1 byte: enough for the validator to reject an oversized payload
    without loading a huge file into memory."""
    data = stream.read(rules.MAX_PAYLOAD_BYTES + 1)
    if len(data) > rules.MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"{what} is larger than 1 MiB: an annotation payload holds at most 1,048,576 bytes (R7.1)")
    return data


@app.command("mb", rich_help_panel="Storage")
def make_bucket(
    bucket: str = typer.Argument(..., help="bucket name (or s3://bucket)"),
    versioned: bool = typer.Option(False, "--versioned", help="enable versioning (each write keeps the old version)"),
) -> None:
    """Create a bucket (no error if it already exists)."""
    name = bucket[5:].rstrip("/") if bucket.startswith("s3://") else bucket
    validate_bucket(name)
    with _store() as store:
        store.create_bucket(name, versioned=versioned)
    _say(f"bucket s3://{name}{' (versioned)' if versioned else ''} ready")


@app.command("put", rich_help_panel="Storage")
def put(
    file: str = typer.Argument(..., help="local file to upload, or - for stdin"),
    uri: str = typer.Argument(..., help="destination s3://bucket/key", callback=object_uri),
    content_type: str | None = typer.Option(None, "--content-type", help="MIME type to store with the object"),
    if_none_match: bool = typer.Option(False, "--if-none-match", help="fail if the key already exists"),
) -> None:
    """Upload a file (streamed; a new version starts with no annotations)."""
    target = parse_uri(uri)
    if file == _STDIO:
        body = _binary(sys.stdin)
    else:
        body = Path(file)
        _regular_file(body, "cannot upload")
    with _store() as store:
        info = store.put_object(target.bucket, target.key, body, content_type=content_type, if_none_match=if_none_match)
    version = f", version {info.version_id}" if info.version_id else ""
    _say(f"uploaded {file} to {target} ({info.size:,} bytes, ETag {info.etag}{version})")


@app.command("get", rich_help_panel="Storage")
def get(
    uri: str = typer.Argument(..., help="s3://bucket/key", callback=object_uri),
    file: str | None = typer.Argument(None, help="where to write it (default: stdout)"),
    version_id: str | None = typer.Option(None, "--version-id", help="a specific object version"),
) -> None:
    """Download an object to a file (written to a temp file, then renamed) or to stdout."""
    source = parse_uri(uri)
    with _store() as store:
        if file is None or file == _STDIO:
            chunks, _ = store.open_object(source.bucket, source.key, version_id=version_id)
            _write_stdout(chunks)
            return
        path = Path(file)
        if path.is_dir():
            path = path / source.name
        if not path.parent.is_dir():
            raise InvalidInput(f"cannot write {str(path)!r}: directory {str(path.parent)!r} does not exist")
        info = store.download(source.bucket, source.key, path, version_id=version_id)
    _say(f"downloaded {source} to {path} ({info.size:,} bytes)")


@app.command("ls", rich_help_panel="Storage")
def ls(
    uri: str = typer.Argument(..., help="s3://bucket or s3://bucket/prefix", callback=prefix_uri),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="list every key, not one level"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """List objects: key, size, modified, ETag (folders shown as PRE)."""
    target = parse_uri(uri, require_key=False)
    objects: list[ObjectInfo] = []
    prefixes: list[str] = []
    with _store() as store:
        token = None
        while True:
            page = store.list_objects_page(
                target.bucket, target.key, continuation_token=token, delimiter=None if recursive else "/"
            )
            objects += page.objects
            prefixes += page.common_prefixes
            if not (token := page.next_token):
                break
    if as_json:
        _print_json({"bucket": target.bucket, "prefixes": prefixes, "objects": [_object_json(o) for o in objects]})
        return
    table = Table(Column("key"), Column("size", justify="right"), "modified", "etag", box=None, header_style="bold")
    # keys may hold controls, bidi or zero-width characters: shown escaped
    rows: list[list[str | Text]] = [[Text.assemble(("PRE", "cyan"), " ", printable(p)), "", "", ""] for p in prefixes]
    rows += [[Text(printable(o.key)), f"{o.size:,}", _when(o), o.etag] for o in objects]
    # keys are never folded (a copied key works); at 80 columns the ETag is cut first (--json has it whole)
    print_table(console, table, rows, whole={0, 1, 2})
    if not objects and not prefixes:
        _say(f"(nothing under {target})", style="dim")


@app.command("rm", rich_help_panel="Storage")
def rm(
    uri: str = typer.Argument(..., help="s3://bucket/key", callback=object_uri),
    version_id: str | None = typer.Option(None, "--version-id", help="delete this version permanently"),
) -> None:
    """Delete an object (in a versioned bucket: add a delete marker unless --version-id)."""
    target = parse_uri(uri)
    with _store() as store:
        store.delete_object(target.bucket, target.key, version_id=version_id)
    _say(f"deleted {target}{f' version {version_id}' if version_id else ''}")


@app.command("cp", rich_help_panel="Storage")
def cp(
    src: str = typer.Argument(..., help="source s3://bucket/key", callback=object_uri),
    dst: str = typer.Argument(..., help="destination s3://bucket/key", callback=object_uri),
    exclude_annotations: bool = typer.Option(False, "--exclude-annotations", help="do not copy the annotations"),
    version_id: str | None = typer.Option(None, "--version-id", help="copy this version of the source"),
) -> None:
    """Server-side copy; annotations come along unless --exclude-annotations."""
    source, target = parse_uri(src), parse_uri(dst)
    directive: AnnotationDirective = "EXCLUDE" if exclude_annotations else "COPY"
    with _store() as store:
        store.copy_object(
            source.bucket,
            source.key,
            target.bucket,
            target.key,
            src_version_id=version_id,
            annotation_directive=directive,
        )
        count = 0 if exclude_annotations else sum(1 for _ in store.list_annotations(target.bucket, target.key))
    _say(f"copied {source} to {target} with {count} annotation(s)")


@app.command("annotate", rich_help_panel="Annotations")
def annotate(
    uri: str = typer.Argument(..., help="s3://bucket/key of an existing object", callback=object_uri),
    name: str = typer.Argument(..., help="annotation name, e.g. agent.summary"),
    source: str | None = typer.Argument(None, help="- to read the payload from stdin"),
    file: Path | None = typer.Option(None, "--file", "-f", help="read the payload from this file"),
    json_text: str | None = typer.Option(None, "--json", help="the payload as JSON text (validated, stored compact)"),
    version_id: str | None = typer.Option(None, "--version-id", help="annotate this object version"),
    if_match: str | None = typer.Option(None, "--if-match", help="only if the object's ETag is still this"),
) -> None:
    """Attach (or overwrite) an annotation: UTF-8 text up to 1 MiB."""
    target = parse_uri(uri)
    rules.validate_annotation_name(name, bucket=target.bucket, key=target.key)
    given = [s for s in (source, file, json_text) if s is not None]
    if len(given) != 1 or (source is not None and source != _STDIO):
        raise InvalidInput(f"annotate {target} {name}: give exactly one payload source: --file F, --json TEXT or -")
    if json_text is not None:
        payload = rules.json_payload(json_text, where=f"--json for annotation {name!r} on {target}")
    elif file is not None:
        _regular_file(file, f"annotate {target} {name}: --file")
        with file.open("rb") as f:
            payload = _read_limited(f, f"file {str(file)!r}")
    else:
        payload = _read_limited(_binary(sys.stdin), "stdin")
    with _store() as store:
        info = store.put_annotation(target.bucket, target.key, name, payload, version_id=version_id, if_match=if_match)
    _say(f"annotated {target} with {name} ({info.size:,} bytes, ETag {info.etag})")


@app.command("annotations", rich_help_panel="Annotations")
def show_annotations(
    uri: str = typer.Argument(..., help="s3://bucket/key", callback=object_uri),
    name: str | None = typer.Argument(None, help="print this annotation's payload"),
    prefix: str | None = typer.Option(None, "--prefix", help="only names starting with this"),
    version_id: str | None = typer.Option(None, "--version-id", help="of this object version"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """List an object's annotations, or print one payload."""
    target = parse_uri(uri)
    with _store() as store:
        if name is not None:
            annotation = store.get_annotation(target.bucket, target.key, name, version_id=version_id)
            if as_json:
                _print_json({**_annotation_json(annotation.info), "payload": _payload_value(annotation.text())})
                return
            _write_stdout([annotation.payload, b"" if annotation.payload.endswith(b"\n") else b"\n"])
            return
        entries = list(store.list_annotations(target.bucket, target.key, prefix=prefix, version_id=version_id))
    if as_json:
        _print_json([_annotation_json(a) for a in entries])
        return
    table = Table(
        Column("name", no_wrap=True),  # names are what people read and type: never folded
        Column("size", justify="right", no_wrap=True),
        Column("modified", no_wrap=True),
        Column("etag", overflow="fold"),  # whole from 84 columns; folded, not cut, below
        box=None,
        header_style="bold",
    )
    for entry in entries:
        table.add_row(Text(printable(entry.name)), f"{entry.size:,}", _when(entry), entry.etag)
    console.print(table)
    if not entries:
        _say(f"(no annotations on {target})", style="dim")


@app.command("unannotate", rich_help_panel="Annotations")
def unannotate(
    uri: str = typer.Argument(..., help="s3://bucket/key", callback=object_uri),
    name: str = typer.Argument(..., help="annotation name"),
    version_id: str | None = typer.Option(None, "--version-id", help="of this object version"),
    if_match: str | None = typer.Option(None, "--if-match", help="only if the object's ETag is still this"),
) -> None:
    """Delete an annotation (succeeds if it was already gone)."""
    target = parse_uri(uri)
    with _store() as store:
        store.delete_annotation(target.bucket, target.key, name, version_id=version_id, if_match=if_match)
    _say(f"removed {name} from {target}")
