"""Streaming between a process and S3 with no temporary file: a producer's stdout straight into a
multipart upload (SHA-256 computed on the way), and an object straight into a consumer's stdin.

No Django here: the benchmark and the tests use these functions with a bare boto3 client.

Memory is bounded by the part size: one part is being read while at most `max_in_flight` parts
are uploading, so a 1 TB dump costs what a 1 GB dump costs.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last
DEFAULT_PART_SIZE = 8 * 1024 * 1024
CREATED_BY_TAG = ("created-by", "opsconsole")


class StreamAborted(Exception):
    """The upload was abandoned (the producer failed, a cancel, an S3 error) and aborted:
    no object, partial or whole, was left behind."""


@dataclass
class Uploaded:
    bucket: str
    key: str
    size: int
    sha256: str
    parts: int
    etag: str


def encryption_args(kms_key_id: str = "") -> dict:
    """Server-side encryption: KMS with the region's key when one is configured, else SSE-S3."""
    if kms_key_id:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
    return {"ServerSideEncryption": "AES256"}


def tagging(sha256: str, extra: dict[str, str] | None = None) -> dict:
    tags = {CREATED_BY_TAG[0]: CREATED_BY_TAG[1], "sha256": sha256, **(extra or {})}
    return {"TagSet": [{"Key": key, "Value": value} for key, value in tags.items()]}


def upload_stream(
    source: BinaryIO,
    s3,
    bucket: str,
    key: str,
    *,
    part_size: int = DEFAULT_PART_SIZE,
    kms_key_id: str = "",
    producer_ok: Callable[[], str | None] = lambda: None,
    check_cancel: Callable[[], None] = lambda: None,
    max_in_flight: int = 2,
    tags: dict[str, str] | None = None,
) -> Uploaded:
    """Read `source` to EOF into a multipart upload of s3://bucket/key.

    After EOF, `producer_ok()` is asked whether the producer succeeded (it returns None, or a
    reason); only then is the upload completed. Any failure aborts the multipart upload, so S3
    never shows a partial object, and is re-raised (a failed producer as StreamAborted).
    The SHA-256 and the console's tags are written onto the object as tags.
    """
    if part_size < MIN_PART_SIZE:
        raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum).")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **encryption_args(kms_key_id))["UploadId"]
    digest = hashlib.sha256()
    size = 0
    parts: list[dict] = []
    pending: list[Future] = []
    slots = threading.BoundedSemaphore(max_in_flight)

    def upload(number: int, data: bytes) -> dict:
        try:
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)["ETag"]
            return {"PartNumber": number, "ETag": etag}
        finally:
            slots.release()

    try:
        with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="s3-part") as pool:
            number = 0
            while True:
                check_cancel()
                data = source.read(part_size)
                if not data and number > 0:
                    break
                number += 1
                digest.update(data)
                size += len(data)
                slots.acquire()  # at most max_in_flight parts in memory besides the one being read
                pending.append(pool.submit(upload, number, data))
                del data
                for done in [f for f in pending if f.done()]:
                    parts.append(done.result())  # re-raises an upload error now, not at the end
                    pending.remove(done)
                if size == 0:
                    break  # an empty stream: one empty part, so the object exists
            for future in pending:
                parts.append(future.result())
        problem = producer_ok()
        if problem:
            raise StreamAborted(problem)
        parts.sort(key=lambda part: part["PartNumber"])
        completed = s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        # Whatever stopped us (the producer, a cancel, S3 itself): no partial object may remain.
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    sha256 = digest.hexdigest()
    s3.put_object_tagging(Bucket=bucket, Key=key, Tagging=tagging(sha256, tags))
    return Uploaded(bucket, key, size, sha256, len(parts), completed.get("ETag", ""))


def object_tags(s3, bucket: str, key: str) -> dict[str, str]:
    found = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {tag["Key"]: tag["Value"] for tag in found}


def object_sha256(s3, bucket: str, key: str, *, chunk_size: int = 1024 * 1024) -> tuple[str, int, str]:
    """Read the object once, hashing it; returns (sha256 hex, size, ETag) without keeping it."""
    response = s3.get_object(Bucket=bucket, Key=key)
    digest = hashlib.sha256()
    size = 0
    for chunk in response["Body"].iter_chunks(chunk_size):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size, response["ETag"]


def download_into(
    s3,
    bucket: str,
    key: str,
    sink: BinaryIO,
    *,
    if_match: str = "",
    chunk_size: int = 1024 * 1024,
    check_cancel: Callable[[], None] = lambda: None,
) -> str:
    """Write the object into `sink` (a consumer's stdin) as it arrives; returns its SHA-256.

    `if_match` pins the exact object whose checksum was verified before: if the key was
    overwritten in between, S3 refuses instead of serving other bytes.
    """
    extra = {"IfMatch": if_match} if if_match else {}
    response = s3.get_object(Bucket=bucket, Key=key, **extra)
    digest = hashlib.sha256()
    for chunk in response["Body"].iter_chunks(chunk_size):
        check_cancel()
        digest.update(chunk)
        sink.write(chunk)
    return digest.hexdigest()


def copy_object(
    source_s3, source_bucket: str, key: str, target_s3, target_bucket: str, *, kms_key_id: str = ""
) -> None:
    """Server-side copy to another bucket (another region: the DR copy), multipart when large.
    The tags are set again afterwards: a multipart copy does not carry them."""
    target_s3.copy(
        {"Bucket": source_bucket, "Key": key},
        target_bucket,
        key,
        ExtraArgs=encryption_args(kms_key_id),
        SourceClient=source_s3,
    )
    tags = source_s3.get_object_tagging(Bucket=source_bucket, Key=key)["TagSet"]
    target_s3.put_object_tagging(Bucket=target_bucket, Key=key, Tagging={"TagSet": tags})


def delete_object(s3, bucket: str, key: str) -> bool:
    """Delete the object if the console created it (its tag says so); returns whether it did."""
    try:
        tags = object_tags(s3, bucket, key)
    except s3.exceptions.NoSuchKey:
        return False
    except Exception as exc:  # a missing key answers 404 without the modelled error on some stand-ins
        if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return False
        raise
    if tags.get(CREATED_BY_TAG[0]) != CREATED_BY_TAG[1]:
        return False
    s3.delete_object(Bucket=bucket, Key=key)
    return True
