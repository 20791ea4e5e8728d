"""Every project command's `--help` tells an operator each argument and what it is when left out.

An option left out silently takes its default: `--help` must say which (or
that the option is required), for every command of the project, so a new
command cannot ship without it. Also the refusals that come with the same
polish (issue 15): a whole API key given to `partner_api_key_revoke`, an
`audit_verify --archive` path that is not there, and `ledger_verify` saying
how much it checked.
"""

from __future__ import annotations

import argparse
import io
import re

import pytest
from django.core.management import CommandError, call_command, get_commands, load_command_class
from django.core.management.base import BaseCommand

from accounts.tests.operator_helpers import operator_create, operator_stdin
from accounts.tests.test_api_keys import confidential_client, issue
from audit.models import AuditEvent

PROJECT_APPS = ("accounts", "audit", "fintech", "ledger", "pki", "tokenvault")
DJANGO_OPTIONS = {action.dest for action in BaseCommand().create_parser("manage.py", "base")._actions}


def project_commands() -> list[tuple[str, str]]:
    """(app, name) of every management command the project's own apps hold."""
    return [(app, name) for name, app in sorted(get_commands().items()) if app in PROJECT_APPS]


def commands_with_own_arguments() -> list[tuple[str, str]]:
    """Those whose arguments the project declares (not `flush`, whose arguments are Django's own)."""
    return [
        (app, name)
        for app, name in project_commands()
        if not type(load_command_class(app, name)).add_arguments.__module__.startswith("django.")
    ]


def own_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        action
        for action in parser._actions
        if action.dest not in DJANGO_OPTIONS and action.help != argparse.SUPPRESS and action.dest != "help"
    ]


def test_the_project_has_the_commands_the_readme_documents():
    names = {name for _app, name in project_commands()}
    assert {"demo_seed", "partner_api_key_revoke", "fields_retire_key", "vault_retire_key", "audit_verify"} <= names


@pytest.mark.parametrize(("app", "name"), commands_with_own_arguments())
def test_help_names_every_argument_with_its_default_or_says_it_is_required(app, name):
    parser = load_command_class(app, name).create_parser("manage.py", name)
    text = " ".join(parser.format_help().split())  # argparse wraps lines: compare on single spaces

    for action in own_actions(parser):
        assert action.help, f"{name}: {action.dest} has no help"
        shown = action.option_strings[-1] if action.option_strings else action.metavar or action.dest
        if not action.option_strings and action.choices:
            shown = "{" + ",".join(action.choices) + "}"
        assert shown in text, f"{name}: --help does not name {shown}"
        rendered = " ".join((action.help % {**vars(action), "prog": parser.prog}).split())
        assert rendered in text, f"{name}: {shown}'s help is not in --help"
        if action.required or not action.option_strings:
            assert "required" in rendered, f"{name}: {shown} is required and its help should say so"
        else:
            assert "default:" in rendered or "required" in rendered, f"{name}: {shown} should show its default"
            if action.default not in (None, ""):
                assert re.search(rf"default: {re.escape(str(action.default))}\b", rendered), (name, shown, rendered)


@pytest.mark.django_db
def test_revoke_refuses_a_whole_key_and_never_echoes_its_secret():
    api_key, raw_key = issue(confidential_client())
    operator = operator_create(roles=["security_admin"])

    with pytest.raises(CommandError) as refused:
        call_command("partner_api_key_revoke", raw_key, "--reason", "leaked", stdin=operator_stdin(operator))

    message = str(refused.value)
    assert "whole API key" in message and api_key.prefix in message
    assert raw_key.rsplit("_", 1)[1] not in message
    api_key.refresh_from_db()
    assert api_key.revoked_at is None
    assert not AuditEvent.objects.filter(event_type__startswith="auth.operator").exists()  # refused before asking


@pytest.mark.django_db
def test_revoke_refuses_something_that_is_not_a_prefix():
    with pytest.raises(CommandError, match="not an API key prefix"):
        call_command("partner_api_key_revoke", "payouts-key", "--reason", "x", stdin=io.StringIO())


def test_audit_verify_of_a_missing_archive_prints_only_the_error(tmp_path):
    stdout, stderr = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError, match="no archive file at") as refused:
        call_command("audit_verify", "--archive", str(tmp_path / "nope.jsonl.gz"), stdout=stdout, stderr=stderr)

    assert refused.value.returncode != 0
    assert stdout.getvalue() == "" and stderr.getvalue() == ""  # no normal-looking report before the error


@pytest.mark.django_db
def test_ledger_verify_says_how_many_accounts_transfers_and_postings_it_checked():
    stdout = io.StringIO()

    call_command("ledger_verify", stdout=stdout)

    first = stdout.getvalue().splitlines()[0]
    assert first.startswith("checked ")
    for extent in ("accounts", "transfers", "postings"):
        assert re.search(rf"\d+ {extent}\b", first), first
