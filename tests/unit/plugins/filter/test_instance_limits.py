"""The instance_limits filter: a size sizes the database, the other services keep their fixed ceilings."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.supamanager.supabase.plugins.filter.instance_limits import FilterModule, instance_limits

SIZES = {"nano": {"memory_mb": 512, "cpus": 0.5}, "large": {"memory_mb": 8192, "cpus": 2}}
SERVICES = {"kong": {"memory_mb": 512, "cpus": 1}, "db": {"memory_mb": 99999, "cpus": 99}}


def test_the_size_sets_the_database_and_the_others_keep_their_own():
    limits = instance_limits("nano", SIZES, SERVICES)
    assert limits["db"] == {"mem_limit": "512m", "memswap_limit": "512m", "cpus": 0.5}
    assert limits["kong"] == {"mem_limit": "512m", "memswap_limit": "512m", "cpus": 1.0}
    # a "db" entry among the fixed ceilings never overrides the size
    assert instance_limits("large", SIZES, SERVICES)["db"]["mem_limit"] == "8192m"
    assert instance_limits("large", SIZES, SERVICES)["kong"] == limits["kong"]


def test_no_size_is_no_limits():
    assert instance_limits("", SIZES, SERVICES) == {}
    assert instance_limits(None, SIZES, SERVICES) == {}


@pytest.mark.parametrize(
    ("size", "sizes", "message"),
    [
        ("huge", SIZES, "unknown instance size 'huge'"),
        ("nano", {"nano": {"memory_mb": 512}}, "memory_mb and cpus are required"),
        ("nano", {"nano": {"memory_mb": "lots", "cpus": 1}}, "memory_mb and cpus are required"),
        ("nano", {"nano": {"memory_mb": 16, "cpus": 1}}, "at least 64"),
        ("nano", {"nano": {"memory_mb": 512, "cpus": 0}}, "above 0"),
    ],
)
def test_bad_sizes_are_refused_with_the_reason(size, sizes, message):
    with pytest.raises(AnsibleFilterError, match=message):
        instance_limits(size, sizes, SERVICES)


def test_the_filter_is_registered():
    assert FilterModule().filters()["instance_limits"] is instance_limits
