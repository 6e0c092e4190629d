"""The redact filter: a secret inside a failure message is masked before the user sees it."""

from ansible_collections.supamanager.supabase.plugins.filter.redact import FilterModule, redact

PASSWORD = "s3cr3t-db-password-0123"
JWT_SECRET = "jwt-secret-abcdefghijklmnopqrstuvwxyz"


def test_every_occurrence_of_every_secret_is_masked():
    message = f"psql: password authentication failed: {PASSWORD} (again: {PASSWORD}); jwt {JWT_SECRET}"
    masked = redact(message, [PASSWORD, JWT_SECRET])
    assert masked == "psql: password authentication failed: ******** (again: ********); jwt ********"


def test_a_secret_that_contains_another_is_masked_whole():
    # Longest first: masking the short one first would leave the long one's tail in clear.
    short, long_ = "abcdefgh", "abcdefgh-and-more-secret"
    assert redact(f"x {long_} y {short}", [short, long_]) == "x ******** y ********"


def test_short_empty_and_missing_values_mask_nothing():
    # Values under 8 characters (e.g. "true", a port) would mask ordinary words of the message.
    assert redact("port 5432 is true", ["5432", "true", "", None]) == "port 5432 is true"
    assert redact("nothing to hide", None) == "nothing to hide"


def test_a_non_string_message_is_masked_as_text():
    assert redact({"msg": PASSWORD}, [PASSWORD]) == "{'msg': '********'}"


def test_the_filter_is_registered_under_its_name():
    assert FilterModule().filters() == {"redact": redact}
