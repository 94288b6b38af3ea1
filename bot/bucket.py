"""The asset store in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2…), shared by every replica, with a
local cache per process for ffmpeg and Slack uploads. boto3 is imported here and nowhere else."""

from __future__ import annotations

import mimetypes
import os
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bot.assets import checked_key, legacy_path, move_into_place
from bot.errors import AssetError, AssetMissing

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NOT_THERE = frozenset({"404", "NoSuchKey", "NotFound"})


class S3AssetStore:
    """Keys live under `prefix` in `bucket`. `put` uploads a complete local file in one request (or a multipart
    upload that appears only once completed): no reader ever sees half an object. `fetch` downloads once into
    this process's `cache_dir`, through a temporary file renamed into place. Credentials come from boto3's
    standard chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, an instance or pod role)."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        endpoint_url: str | None,
        cache_dir: Path,
        client: S3Client | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.cache_dir = cache_dir
        if client is None:
            # An upload is at most one clip (SORA_BOT_MAX_CLIP_MB): short timeouts, a few retries by boto3
            # itself. S3-compatible services (MinIO, R2, a server on 127.0.0.1) want path-style addresses.
            config = Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 4, "mode": "standard"},
                s3={"addressing_style": "path" if endpoint_url else "auto"},
            )
            client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
        self._client = client

    @property
    def where(self) -> str:
        at = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"bucket s3://{self.bucket}/{self.prefix}{at}"

    def scratch(self, name: str) -> Path:
        # In the cache's folder, so `put` moves the file into the cache with a rename.
        folder = self.cache_dir / ".scratch"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{secrets.token_hex(6)}-{Path(name).name}"

    def put(self, key: str, source: Path) -> Path:
        name = self.prefix + checked_key(key)
        kind = mimetypes.guess_type(key)[0] or "application/octet-stream"
        try:
            self._client.upload_file(str(source), self.bucket, name, ExtraArgs={"ContentType": kind})
        except (BotoCoreError, ClientError, S3UploadFailedError) as err:
            raise AssetError(f"could not store {key} in {self.where}: {_reason(err)}") from None
        # Already complete and uploaded: it becomes the cached copy, so posting it needs no download.
        target = self.cache_dir / key
        target.parent.mkdir(parents=True, exist_ok=True)
        move_into_place(source, target)
        return target

    def fetch(self, key: str) -> Path:
        legacy = legacy_path(key)
        if legacy is not None:
            if not legacy.is_file():
                raise AssetMissing(f"the asset {key[:120]} is not on this machine")
            return legacy
        target = self.cache_dir / checked_key(key)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
        try:
            self._client.download_file(self.bucket, self.prefix + key, str(partial))
            os.replace(partial, target)
        except ClientError as err:
            if _code(err) in _NOT_THERE:
                raise AssetMissing(f"the asset {key} is not in {self.where}") from None
            raise AssetError(f"could not read {key} from {self.where}: {_reason(err)}") from None
        except BotoCoreError as err:
            raise AssetError(f"could not read {key} from {self.where}: {_reason(err)}") from None
        finally:
            partial.unlink(missing_ok=True)
        return target

    def exists(self, key: str) -> bool:
        legacy = legacy_path(key)
        if legacy is not None:
            return legacy.is_file()
        try:
            self._client.head_object(Bucket=self.bucket, Key=self.prefix + checked_key(key))
        except ClientError as err:
            if _code(err) in _NOT_THERE:
                return False
            raise AssetError(f"could not look for {key} in {self.where}: {_reason(err)}") from None
        except BotoCoreError as err:
            raise AssetError(f"could not look for {key} in {self.where}: {_reason(err)}") from None
        return True

    def delete(self, key: str) -> None:
        legacy = legacy_path(key)
        if legacy is not None:
            legacy.unlink(missing_ok=True)
            return
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self.prefix + checked_key(key))
        except (BotoCoreError, ClientError) as err:
            raise AssetError(f"could not delete {key} from {self.where}: {_reason(err)}") from None
        (self.cache_dir / key).unlink(missing_ok=True)

    def close(self) -> None:
        """The cache is this process's alone: it goes with it."""
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        self._client.close()


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _reason(err: BaseException) -> str:
    if isinstance(err, S3UploadFailedError) and err.__context__ is not None:
        return _reason(err.__context__)  # boto3 wraps S3's answer in a message naming our local file
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip(": ")
    return f"{type(err).__name__}: {err}"
