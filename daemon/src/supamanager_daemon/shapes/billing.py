"""Shapes of the Billing tag: the compute instance size as an addon (the only addon a project has here)."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from .common import Request

# The document's `desired_instance_size`; the role's supabase_instance_sizes has one entry for each
# (tests/unit: test_billing_units.py checks that they agree).
InstanceSize = Literal[
    "nano",
    "micro",
    "small",
    "medium",
    "large",
    "xlarge",
    "2xlarge",
    "4xlarge",
    "8xlarge",
    "12xlarge",
    "16xlarge",
    "24xlarge",
    "24xlarge_optimized_memory",
    "24xlarge_optimized_cpu",
    "24xlarge_high_memory",
    "48xlarge",
    "48xlarge_optimized_memory",
    "48xlarge_optimized_cpu",
    "48xlarge_high_memory",
]
INSTANCE_SIZES: tuple[str, ...] = get_args(InstanceSize)
# The compute addon's variants: ci_<size> for every size but nano, the size of a project without one.
COMPUTE_VARIANTS: tuple[str, ...] = tuple(f"ci_{size}" for size in INSTANCE_SIZES if size != "nano")
AddonType = Literal[
    "custom_domain", "compute_instance", "pitr", "ipv4", "auth_mfa_phone", "auth_mfa_web_authn", "log_drain"
]  # fmt: skip
AddonVariant = Literal[(*COMPUTE_VARIANTS, "cd_default", "pitr_7", "pitr_14", "pitr_28", "ipv4_default")]  # type: ignore[valid-type]


class ApplyProjectAddonBody(Request):
    """PATCH .../billing/addons: only `compute_instance` with a `ci_<size>` variant is served (a resize)."""

    addon_variant: AddonVariant
    addon_type: AddonType


class AddonPrice(BaseModel):
    description: str
    type: Literal["fixed", "usage"]
    interval: Literal["monthly", "hourly"]
    amount: float


class AddonVariantInfo(BaseModel):
    id: str
    name: str
    price: AddonPrice
    meta: Any = Field(default=None, description="`{instance_size}`: the size as `desired_instance_size` names it.")


class SelectedAddon(BaseModel):
    type: AddonType
    variant: AddonVariantInfo


class AvailableAddon(BaseModel):
    type: AddonType
    name: str
    variants: list[AddonVariantInfo]


class ListProjectAddonsResponse(BaseModel):
    selected_addons: list[SelectedAddon]
    available_addons: list[AvailableAddon]
