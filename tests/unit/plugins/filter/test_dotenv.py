"""Unit tests of the dotenv_problems filter: what .env overrides may not carry."""

import pytest
from ansible_collections.supamanager.supabase.plugins.filter.dotenv import FilterModule, dotenv_problems

OWNED = ["JWT_SECRET", "KONG_HTTP_PORT"]


def test_plain_values_pass():
    overrides = {"SMTP_HOST": "mail.example.com", "SMTP_PORT": 587, "DISABLE_SIGNUP": True, "X": "a b,c:d#e!"}
    assert dotenv_problems(overrides, OWNED) == []


@pytest.mark.parametrize("value", ["a'b", 'a"b', "a\\b", "a$b", "a`b", "a\nb", "a\rb", "a\tb", "a\x00b", "a\x7fb"])
def test_a_value_that_could_end_its_line_or_be_expanded_is_refused_without_showing_it(value):
    problems = dotenv_problems({"SMTP_PASS": value}, OWNED)
    assert problems == [
        'the value of "SMTP_PASS" holds a quote, a backslash, $, a backtick or a control character '
        "(newline, tab, ...), which .env cannot carry safely"
    ]
    assert value not in problems[0]


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"JWT_SECRET": "x"}, '"JWT_SECRET" is set by the role itself and cannot be overridden'),
        ({"smtp_pass": "x"}, '"smtp_pass" is not a variable name (A-Z, 0-9 and _, starting with a letter)'),
        ({"A\n": "x"}, '"A\\n" is not a variable name (A-Z, 0-9 and _, starting with a letter)'),
        ({"SMTP": ["x"]}, 'the value of "SMTP" must be a string, a number or a boolean'),
        ({"SMTP": None}, 'the value of "SMTP" must be a string, a number or a boolean'),
    ],
)
def test_names_and_value_types(overrides, problem):
    assert dotenv_problems(overrides, OWNED) == [problem]


def test_not_a_map():
    assert dotenv_problems(["A=b"], OWNED) == ["supabase_env_overrides must be a map of variable names to values"]


def test_the_filter_is_registered():
    assert FilterModule().filters()["dotenv_problems"] is dotenv_problems
