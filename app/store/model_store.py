"""Where model versions' artifacts live. EDUQ_MODEL_STORE is a local directory (default
`$EDUQ_VAR_DIR/models`, i.e. var/models) or `s3://bucket/prefix` (S3-compatible, needs boto3;
EDUQ_S3_ENDPOINT_URL points it at MinIO and the like, credentials from the usual AWS variables).

A version is a folder of files. Its checksum is the SHA-256 of a manifest listing every file's
relative path and SHA-256, so any changed, missing or extra file changes it; loaders verify it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from app.settings import settings


def store_root() -> str:
    return settings().model_store_root


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dir_checksum(folder: str | Path) -> str:
    folder = Path(folder)
    lines = [f"{p.relative_to(folder).as_posix()} {_sha(p)}" for p in sorted(folder.rglob("*")) if p.is_file()]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


class ChecksumMismatch(Exception):
    pass


class LocalStore:
    def __init__(self, root: str):
        self.root = Path(root[7:] if root.startswith("file://") else root).resolve()

    def put(self, model_id: str, src: Path) -> str:
        dest = self.root / model_id
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{model_id}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
        return dest.as_uri()

    def fetch(self, uri: str, model_id: str) -> Path:
        return Path(uri[7:] if uri.startswith("file://") else uri)

    def delete(self, uri: str) -> None:
        shutil.rmtree(self.fetch(uri, ""), ignore_errors=True)


class S3Store:
    def __init__(self, url: str):
        import boto3  # optional: pip install boto3

        rest = url[5:]
        self.bucket, _, self.prefix = rest.partition("/")
        self.prefix = self.prefix.strip("/")
        self.s3 = boto3.client("s3", endpoint_url=settings().s3_endpoint_url)

    def _key(self, model_id: str, rel: str = "") -> str:
        return "/".join(p for p in (self.prefix, model_id, rel) if p)

    def put(self, model_id: str, src: Path) -> str:
        for p in sorted(Path(src).rglob("*")):
            if p.is_file():
                self.s3.upload_file(str(p), self.bucket, self._key(model_id, p.relative_to(src).as_posix()))
        return f"s3://{self.bucket}/{self._key(model_id)}"

    def _parse(self, uri: str) -> tuple[str, str]:
        bucket, _, key = uri[5:].partition("/")
        return bucket, key.rstrip("/") + "/"

    def fetch(self, uri: str, model_id: str) -> Path:
        bucket, key = self._parse(uri)
        dest = Path(settings().var_dir) / "model-cache" / model_id
        if dest.exists():
            return dest
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                target = tmp / obj["Key"][len(key):]
                target.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(bucket, obj["Key"], str(target))
        os.replace(tmp, dest)
        return dest

    def delete(self, uri: str) -> None:
        bucket, key = self._parse(uri)
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objs:
                self.s3.delete_objects(Bucket=bucket, Delete={"Objects": objs})
        shutil.rmtree(Path(settings().var_dir) / "model-cache" / key.rstrip("/").rsplit("/", 1)[-1], ignore_errors=True)


def store_for(uri_or_root: str | None = None):
    target = uri_or_root or store_root()
    if target.startswith("s3://"):
        return S3Store(target)
    return LocalStore(target)


def put(model_id: str, src: Path) -> tuple[str, str]:
    """Upload a version's folder; returns (artifact_uri, checksum)."""
    checksum = dir_checksum(src)
    return store_for().put(model_id, Path(src)), checksum


def fetch_verified(uri: str, model_id: str, checksum: str | None) -> Path:
    path = store_for(uri if uri.startswith("s3://") else None).fetch(uri, model_id)
    if checksum:
        got = dir_checksum(path)
        if got != checksum:
            raise ChecksumMismatch(f"artifacts of {model_id} at {uri} have checksum {got[:12]}…, expected {checksum[:12]}…")
    return path


def delete(uri: str | None) -> None:
    if uri:
        store_for(uri if uri.startswith("s3://") else None).delete(uri)
