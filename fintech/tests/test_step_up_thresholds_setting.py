"""STEP_UP_THRESHOLDS: major units in the environment, exact minor units in settings, a typo stops startup.

A threshold that silently became 100 times too high (a misplaced decimal, the
wrong currency's exponent) would let large payments through without a second
factor, so every malformed value is refused when settings load.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from fintech.settings.env import currency_amounts_minor

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = "EUR=1000.00,USD=1000.00,GBP=1000.00,CHF=1000.00,JPY=150000,KWD=300.000"


def parse(text: str) -> dict[str, int]:
    return currency_amounts_minor(text, variable="STEP_UP_THRESHOLDS")


def test_the_default_becomes_exact_minor_units_with_each_currencys_exponent():
    assert parse(DEFAULT) == {
        "EUR": 100_000,
        "USD": 100_000,
        "GBP": 100_000,
        "CHF": 100_000,
        "JPY": 150_000,
        "KWD": 300_000,
    }


def test_fewer_decimals_than_the_currency_has_zero_and_spaces_around_entries_are_accepted():
    assert parse(" EUR = 1000 , KWD=0.5, BHD=0 ") == {"EUR": 100_000, "KWD": 500, "BHD": 0}


def test_an_empty_value_is_no_threshold_at_all():
    # What that means (step-up for every amount) is accounts.step_up's rule; see accounts/tests/test_step_up.py.
    assert parse("") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("XXX=1000.00", "unknown currency 'XXX'"),
        ("eur=1000.00", "unknown currency 'eur'"),
        ("EUR=1000.001", "EUR amounts have at most 2 decimal places"),
        ("KWD=300.0001", "KWD amounts have at most 3 decimal places"),
        ("JPY=150000.0", "JPY amounts have at most 0 decimal places"),
        ("EUR=-1000.00", "is not a non-negative decimal"),
        ("EUR=+1000.00", "is not a non-negative decimal"),
        ("EUR=abc", "is not a non-negative decimal"),
        ("EUR=1e3", "is not a non-negative decimal"),
        ("EUR=NaN", "is not a non-negative decimal"),
        ("EUR=1,000.00", "is not CURRENCY=AMOUNT"),
        ("EUR=", "is not a non-negative decimal"),
        ("EUR=1 000", "is not a non-negative decimal"),
        ("EUR=\u0661\u0660", "is not a non-negative decimal"),  # Arabic-Indic digits are not ASCII digits
        ("EUR 1000.00", "is not CURRENCY=AMOUNT"),
        ("EUR=1000.00,", "is not CURRENCY=AMOUNT"),
        ("EUR=1000.00,EUR=5.00", "EUR is given more than once"),
    ],
)
def test_a_malformed_value_is_refused_naming_the_variable(text, message):
    with pytest.raises(ImproperlyConfigured) as refused:
        parse(text)

    assert message in str(refused.value)
    assert str(refused.value).startswith("STEP_UP_THRESHOLDS: ")


def load_settings(thresholds: str, **extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "fintech.settings.test", "STEP_UP_THRESHOLDS": thresholds, **extra}
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(sorted(settings.STEP_UP_THRESHOLDS_MINOR.items()))"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_startup_fails_loudly_on_a_malformed_value():
    result = load_settings("EUR=1000.00,KWD=300.0001")

    assert result.returncode != 0
    assert "ImproperlyConfigured: STEP_UP_THRESHOLDS: KWD amounts have at most 3 decimal places" in result.stderr


def test_startup_reads_the_variable_once_into_minor_units():
    result = load_settings("EUR=0.01,KWD=1.5,JPY=7")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[('EUR', 1), ('JPY', 7), ('KWD', 1500)]"


def test_the_retired_single_threshold_is_refused_rather_than_ignored():
    result = load_settings(DEFAULT, STEP_UP_AMOUNT_MINOR="50000")

    assert result.returncode != 0
    assert "STEP_UP_AMOUNT_MINOR is no longer read: set STEP_UP_THRESHOLDS instead" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LEDGER_LIMIT_TIME_ZONE", "Mars/Olympus", "LEDGER_LIMIT_TIME_ZONE='Mars/Olympus' is not an IANA time zone"),
        ("LEDGER_REVIEW_ESCALATE_AFTER_HOURS", "0", "LEDGER_REVIEW_ESCALATE_AFTER_HOURS is a whole number of hours"),
        ("LEDGER_REVIEW_ESCALATE_AFTER_HOURS", "-5", "LEDGER_REVIEW_ESCALATE_AFTER_HOURS is a whole number of hours"),
    ],
)
def test_the_money_control_settings_refuse_values_that_would_misbehave(variable, value, message):
    """A zero escalation delay would alert on every case as it opens; an unknown zone has no business day."""
    result = load_settings(DEFAULT, **{variable: value})

    assert result.returncode != 0
    assert message in result.stderr
