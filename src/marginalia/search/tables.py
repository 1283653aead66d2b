"""The S3 Metadata tables: their Athena names, and turning the annotation table on for a bucket.

On AWS the annotation table of bucket ``my-media`` is
``"s3tablescatalog/aws-s3"."b_my_media"."annotation"`` (spec R16.8/R16.9: the namespace is the
bucket name with every ``-`` and ``.`` turned into ``_``). It is fed by S3 Metadata once a
metadata configuration with an ``AnnotationTableConfiguration`` exists on the bucket (R16.1-R16.3),
and it lags writes by up to an hour (R17.10) — :data:`LAG_NOTE` says so wherever results are shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import BackendError, ConfigurationError, InvalidInput, MarginaliaError, StorageError
from ..uri import validate_bucket

CATALOG = "s3tablescatalog/aws-s3"
TABLE_KINDS = ("annotation", "journal", "inventory")
LAG_NOTE = "AWS's annotation table lags writes by up to an hour; read one annotation with `marginalia annotations`."


def namespace(bucket: str) -> str:
    """``b_<bucket>`` with ``-`` and ``.`` turned into ``_`` (spec R16.9)."""
    return "b_" + re.sub(r"[-.]", "_", validate_bucket(bucket))


def athena_table(bucket: str, table: str = "annotation") -> str:
    """The fully qualified, quoted Athena name of one metadata table of ``bucket``."""
    if table not in TABLE_KINDS:
        raise InvalidInput(f"unknown metadata table {table!r}: one of {', '.join(TABLE_KINDS)}")
    return f'"{CATALOG}"."{namespace(bucket)}"."{table}"'


@dataclass(frozen=True)
class TableStatus:
    """What ``marginalia tables status`` shows for a bucket."""

    bucket: str
    configured: bool
    annotation_state: str | None = None  # ENABLED | DISABLED
    annotation_status: str | None = None  # CREATING | BACKFILLING | ACTIVE | FAILED
    annotation_error: str | None = None
    journal_status: str | None = None
    inventory_state: str | None = None
    table_namespace: str | None = None
    role: str | None = None

    @property
    def athena_name(self) -> str:
        return athena_table(self.bucket)

    def as_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "configured": self.configured,
            "annotation_table": self.annotation_state,
            "annotation_table_status": self.annotation_status,
            "annotation_table_error": self.annotation_error,
            "journal_table_status": self.journal_status,
            "inventory_table": self.inventory_state,
            "namespace": self.table_namespace,
            "role": self.role,
            "athena_name": self.athena_name,
        }


def _code(exc) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _backend_error(action: str, bucket: str, exc) -> StorageError:
    error = getattr(exc, "response", {}).get("Error", {})
    status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    return BackendError(
        f"{action} for s3://{bucket} failed: {error.get('Code', type(exc).__name__)}: {error.get('Message', exc)}",
        code=error.get("Code"),
        status=status,
        uri=f"s3://{bucket}",
    )


def _no_answer(action: str, bucket: str, exc) -> MarginaliaError:
    """A request that got no answer from S3 (credentials, region, network), as the storage layer says it."""
    from ..storage.errors_map import Target, map_botocore_error

    return map_botocore_error(exc, Target(action, bucket))


def table_status(s3_client, bucket: str) -> TableStatus:
    """Read the bucket's metadata configuration (GetBucketMetadataConfiguration)."""
    from botocore.exceptions import BotoCoreError, ClientError

    validate_bucket(bucket)
    try:
        response = s3_client.get_bucket_metadata_configuration(Bucket=bucket)
    except ClientError as exc:
        if _code(exc) == "MetadataConfigurationNotFound":  # R16.10
            return TableStatus(bucket=bucket, configured=False)
        raise _backend_error("GetBucketMetadataConfiguration", bucket, exc) from None
    except BotoCoreError as exc:  # no credentials or region, the network: before any answer
        raise _no_answer("GetBucketMetadataConfiguration", bucket, exc) from None
    result = response["GetBucketMetadataConfigurationResult"]["MetadataConfigurationResult"]
    annotation = result.get("AnnotationTableConfigurationResult") or {}
    journal = result.get("JournalTableConfigurationResult") or {}
    inventory = result.get("InventoryTableConfigurationResult") or {}
    error = annotation.get("Error") or {}
    return TableStatus(
        bucket=bucket,
        configured=True,
        annotation_state=annotation.get("ConfigurationState"),
        annotation_status=annotation.get("TableStatus"),
        annotation_error=": ".join(filter(None, (error.get("ErrorCode"), error.get("ErrorMessage")))) or None,
        journal_status=journal.get("TableStatus"),
        inventory_state=inventory.get("ConfigurationState"),
        table_namespace=result.get("DestinationResult", {}).get("TableNamespace"),
        role=annotation.get("Role"),
    )


def enable_annotation_table(
    s3_client,
    bucket: str,
    *,
    role: str | None = None,
    kms_key_arn: str | None = None,
    inventory: bool = False,
    journal_expiration_days: int | None = None,
) -> TableStatus:
    """Turn on S3 Metadata's annotation table for ``bucket`` (and the journal it needs).

    No metadata configuration yet: CreateBucketMetadataConfiguration with a journal table
    (records kept for ``journal_expiration_days`` days, or forever), the annotation table and,
    when asked, the inventory table. A configuration without the annotation table: Update…
    AnnotationTableConfiguration. Already enabled: nothing is sent. ``role`` is the IAM role S3
    uses to read annotations (R16.3/R16.4); AWS requires it when enabling for the first time.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    current = table_status(s3_client, bucket)
    if current.annotation_state == "ENABLED":
        return current
    if role is None and not current.role:
        raise ConfigurationError(
            f"enabling the annotation table of s3://{bucket} needs --role ARN: an IAM role trusted by "
            "metadata.s3.amazonaws.com that may s3:GetObjectAnnotation and s3:ListBucket (spec R16.4)"
        )
    annotation_config: dict[str, Any] = {"ConfigurationState": "ENABLED", "Role": role or current.role}
    if kms_key_arn:
        annotation_config["EncryptionConfiguration"] = {"SseAlgorithm": "aws:kms", "KmsKeyArn": kms_key_arn}
    try:
        if not current.configured:
            if journal_expiration_days is not None and journal_expiration_days < 7:
                raise InvalidInput("journal records must be kept at least 7 days (RecordExpiration.Days >= 7)")
            expiration = (
                {"Expiration": "ENABLED", "Days": journal_expiration_days}
                if journal_expiration_days is not None
                else {"Expiration": "DISABLED"}
            )
            configuration: dict[str, Any] = {
                "JournalTableConfiguration": {"RecordExpiration": expiration},
                "AnnotationTableConfiguration": annotation_config,
            }
            if inventory:
                configuration["InventoryTableConfiguration"] = {"ConfigurationState": "ENABLED"}
            s3_client.create_bucket_metadata_configuration(Bucket=bucket, MetadataConfiguration=configuration)
        else:
            s3_client.update_bucket_metadata_annotation_table_configuration(
                Bucket=bucket, AnnotationTableConfiguration=annotation_config
            )
            if inventory and current.inventory_state != "ENABLED":
                s3_client.update_bucket_metadata_inventory_table_configuration(
                    Bucket=bucket, InventoryTableConfiguration={"ConfigurationState": "ENABLED"}
                )
    except ClientError as exc:
        raise _backend_error("enabling the annotation table", bucket, exc) from None
    except BotoCoreError as exc:
        raise _no_answer("enabling the annotation table", bucket, exc) from None
    return table_status(s3_client, bucket)
