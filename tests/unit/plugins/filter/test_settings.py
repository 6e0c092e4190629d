"""Unit tests of the settings_problems filter: what a project's service settings may not be."""

import pytest
from ansible_collections.supamanager.supabase.plugins.filter.settings import FilterModule, settings_problems

FIELDS = {
    "disable_signup": {"type": "bool"},
    "jwt_exp": {"type": "int", "max": 604800},
    "smtp_pass": {"type": "str"},
    "smtp_port": {"type": "str", "pattern": "[0-9]{1,5}", "max_length": 5},
}


def test_good_settings_pass():
    settings = {"disable_signup": True, "jwt_exp": 0, "smtp_pass": "a b,c:d#e!", "smtp_port": "587"}
    assert settings_problems(settings, FIELDS) == []


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"nope": 1}, '"nope" is not a setting of supabase_auth_settings'),
        ({"disable_signup": "true"}, '"disable_signup" must be true or false'),
        ({"jwt_exp": 604801}, '"jwt_exp" must be an integer from 0 to 604800'),
        ({"jwt_exp": -1}, '"jwt_exp" must be an integer from 0 to 604800'),
        ({"jwt_exp": True}, '"jwt_exp" must be an integer from 0 to 604800'),
        ({"jwt_exp": "3600"}, '"jwt_exp" must be an integer from 0 to 604800'),
        ({"smtp_pass": 5}, '"smtp_pass" must be a string of at most 1024 characters'),
        ({"smtp_pass": "x" * 1025}, '"smtp_pass" must be a string of at most 1024 characters'),
        ({"smtp_port": "25a"}, '"smtp_port" must match [0-9]{1,5}'),
    ],
)
def test_unknown_names_types_and_ranges(settings, problem):
    assert settings_problems(settings, FIELDS) == [problem]


@pytest.mark.parametrize("value", ["a'b", 'a"b', "a\\b", "a$b", "a`b", "a\nb", "a\x00b"])
def test_text_env_cannot_carry_is_refused_without_showing_it(value):
    problems = settings_problems({"smtp_pass": value}, FIELDS)
    assert problems == ['"smtp_pass" holds a quote, a backslash, $, a backtick or a control character']


def test_not_a_map_names_the_variable():
    assert settings_problems(["x"], FIELDS, "supabase_postgrest_settings") == [
        "supabase_postgrest_settings must be a map of setting names to values"
    ]


def test_the_filter_is_registered():
    assert FilterModule().filters()["settings_problems"] is settings_problems
