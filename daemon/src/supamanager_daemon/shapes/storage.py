"""Shapes of the Storage tag (a project's buckets, its storage settings), as the Management API document has them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from .common import Request
from .settings import STORAGE_FIELDS


class V1StorageBucketResponse(BaseModel):
    id: str
    name: str
    owner: str
    created_at: str
    updated_at: str
    public: bool


# -- config/storage: the document's StorageConfigResponse and UpdateStorageConfigBody ------------------
class Enabled(BaseModel):
    enabled: bool


class EnabledBody(Request):
    enabled: bool


class IcebergCatalog(BaseModel):
    enabled: bool
    maxNamespaces: int = Field(ge=0)
    maxTables: int = Field(ge=0)
    maxCatalogs: int = Field(ge=0)


class VectorBuckets(BaseModel):
    enabled: bool
    maxBuckets: int = Field(ge=0)
    maxIndexes: int = Field(ge=0)


class StorageFeatures(BaseModel):
    imageTransformation: Enabled
    s3Protocol: Enabled
    icebergCatalog: IcebergCatalog
    vectorBuckets: VectorBuckets


class StorageCapabilities(BaseModel):
    list_v2: bool
    iceberg_catalog: bool


class StorageExternal(BaseModel):
    upstreamTarget: Literal["main", "canary"]


class StorageConfigResponse(BaseModel):
    fileSizeLimit: int
    features: StorageFeatures
    capabilities: StorageCapabilities
    external: StorageExternal
    migrationVersion: str
    databasePoolMode: str


def _not_on_this_host(value: Any) -> Any:
    if value is not None and value.enabled:
        raise ValueError("is not a feature this host has (only enabled false is taken)")
    return value


class IcebergCatalogBody(Request):
    enabled: bool
    maxNamespaces: int = Field(ge=0)
    maxTables: int = Field(ge=0)
    maxCatalogs: int = Field(ge=0)


class VectorBucketsBody(Request):
    enabled: bool
    maxBuckets: int = Field(ge=0)
    maxIndexes: int = Field(ge=0)


class StorageFeaturesBody(Request):
    imageTransformation: EnabledBody | None = None
    s3Protocol: EnabledBody | None = None
    icebergCatalog: Annotated[IcebergCatalogBody | None, AfterValidator(_not_on_this_host)] = None
    vectorBuckets: Annotated[VectorBucketsBody | None, AfterValidator(_not_on_this_host)] = None


def _main_only(value: Any) -> Any:
    if value is not None and value.upstreamTarget != "main":
        raise ValueError("is not a target this host has (only main)")
    return value


class StorageExternalBody(Request):
    upstreamTarget: Literal["main", "canary"]


class UpdateStorageConfigBody(Request):
    """The storage settings to change; a field left out is left as it is. Taken: the file size limit, image
    transformation and the S3 protocol; iceberg catalogs and vector buckets only as disabled, the upstream
    target only as main."""

    fileSizeLimit: int | None = Field(None, ge=0, le=STORAGE_FIELDS["file_size_limit"]["max"])
    features: StorageFeaturesBody | None = None
    external: Annotated[StorageExternalBody | None, AfterValidator(_main_only)] = None

    def settings(self) -> dict[str, Any]:
        """The change by the role's names (supabase_storage_settings)."""
        out: dict[str, Any] = {}
        if self.fileSizeLimit is not None:
            out["file_size_limit"] = self.fileSizeLimit
        if self.features is not None and self.features.imageTransformation is not None:
            out["image_transformation_enabled"] = self.features.imageTransformation.enabled
        if self.features is not None and self.features.s3Protocol is not None:
            out["s3_protocol_enabled"] = self.features.s3Protocol.enabled
        return out
