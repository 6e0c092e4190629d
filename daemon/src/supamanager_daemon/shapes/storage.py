"""Shapes of the Storage tag (a project's buckets), as the Management API document has them."""

from __future__ import annotations

from pydantic import BaseModel


class V1StorageBucketResponse(BaseModel):
    id: str
    name: str
    owner: str
    created_at: str
    updated_at: str
    public: bool
