"""Who runs a management command that changes state: an authenticated staff member, never a typed name.

Issue 11 item 6: every staff action names an authenticated person. A command
that changes state asks for the operator's email, password and a current
authenticator (TOTP) code, and records that person as the actor of what it
does; `Actor.system(...)` is for scheduled jobs only.

This app is the lowest layer: users, passwords, second factors, the login
throttle and the audit trail all live above it. So this module holds only the
interface and the reading of the terminal; the check itself is registered by
accounts from its AppConfig.ready() (`accounts/operator_auth.py`), the way
`audit/alerts.py` takes its delivery channels. Where nothing is registered
(a process without the accounts app), every operator command is refused:
failing open would let anyone act as nobody.

How the credentials are read:
* stdin is a terminal: the email after a prompt, then the password and the
  code with `getpass` (no echo, not in the scrollback);
* stdin is not a terminal: three lines, email, password, code. Piping is for
  tests (`call_command(..., stdin=io.StringIO(...))`, as Django's
  createsuperuser does) and for automation that feeds them from its own
  secret store; it is not a way around the check, which is the same.
Command-line arguments and environment variables are never read: they land
in shell history, `ps`, /proc/<pid>/environ and CI logs.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, OutputWrapper

MAX_LINE_LENGTH = 1024
OPERATOR_REFUSED_MESSAGE = (
    "operator authentication failed: the email, password or authenticator code was not accepted, or the "
    "account may not run this command. Nothing was changed."
)
OPERATOR_CREDENTIALS_HELP = (
    " Asks for the operator's credentials first (a staff member's email, password and current authenticator "
    "code, read from the terminal, never from arguments or the environment) and records that person as the actor."
)


class OperatorRefused(CommandError):
    """The operator was not authenticated; the message never says which part was wrong."""

    def __init__(self, message: str = OPERATOR_REFUSED_MESSAGE) -> None:
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class OperatorCredentials:
    """What the person typed. Never printed: the password and code are left out of repr()."""

    email: str
    password: str = field(repr=False)
    code: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Operator:
    """The authenticated staff member running the command.

    `actor` is an `audit.services.events.Actor(staff=public_id)` and `user` the
    `accounts.models.User`; typed loosely because this layer may not import
    either. Pass `actor` to services; `user` is for callers in accounts and above.
    """

    public_id: str
    actor: Any
    user: Any = field(default=None, repr=False, compare=False)


class OperatorAuthenticator(Protocol):
    """Checks the credentials for `command`; returns the operator or raises `OperatorRefused`.

    It also records the outcome in the audit trail, successes and refusals alike.
    """

    def __call__(self, *, command: str, credentials: OperatorCredentials) -> Operator: ...


_authenticator: OperatorAuthenticator | None = None


def operator_authenticator_register(authenticator: OperatorAuthenticator) -> None:
    """Install the one authenticator (from an AppConfig.ready()); the same one again is a no-op.

    A second, different one is refused rather than silently replacing the check.
    """
    global _authenticator  # noqa: PLW0603 - a registry set once at start-up, as audit/alerts.py does
    if _authenticator is not None and _authenticator is not authenticator:
        raise ImproperlyConfigured("an operator authenticator is already registered")
    _authenticator = authenticator


def _plain(text: str) -> str:
    return text


def _prompt(stream: TextIO | OutputWrapper, text: str) -> None:
    if isinstance(stream, OutputWrapper):
        # No newline after a prompt, and not in the error colour of the stderr it goes to.
        stream.write(text, style_func=_plain, ending="")
    else:
        stream.write(text)
    stream.flush()


def _line(stdin: TextIO) -> str:
    """One line without its line break; an over-long line counts as nothing typed."""
    line = stdin.readline(MAX_LINE_LENGTH + 1)
    if len(line) > MAX_LINE_LENGTH:
        return ""
    return line.rstrip("\r\n")


def _is_terminal(stream: Any) -> bool:
    isatty: Callable[[], bool] | None = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def operator_line_read(*, stdin: TextIO, stdout: TextIO | OutputWrapper, prompt: str) -> str:
    """One secret line (a staff grant): without echo on a terminal, else the next piped line; never an argument."""
    try:
        if _is_terminal(stdin):
            return getpass.getpass(prompt)[:MAX_LINE_LENGTH].strip()
        return _line(stdin).strip()
    except (EOFError, OSError):
        return ""


def operator_credentials_read(*, stdin: TextIO, stdout: TextIO | OutputWrapper) -> OperatorCredentials:
    """Read email, password and code from the terminal (no echo for the secrets) or from piped lines.

    `stdout` takes the prompts, only when stdin is a terminal; commands pass their
    stderr, so what they print on stdout (a key, a secret) stays clean for a pipe.
    """
    try:
        if _is_terminal(stdin):
            _prompt(stdout, "Operator email: ")
            email = _line(stdin)
            password = getpass.getpass("Password: ")[:MAX_LINE_LENGTH]
            code = getpass.getpass("Authenticator code: ")[:MAX_LINE_LENGTH]
        else:
            email, password, code = _line(stdin), _line(stdin), _line(stdin)
    except (EOFError, OSError):  # closed or unreadable (a daemon's stdin): nothing typed, so refused
        email, password, code = "", "", ""
    return OperatorCredentials(email=email.strip(), password=password, code=code.strip())


def operator_authenticate(
    *, command: str, stdin: TextIO | None = None, stdout: TextIO | OutputWrapper | None = None
) -> Operator:
    """Read the operator's credentials and check them for `command`; raises `OperatorRefused` (a CommandError).

    Call it first in handle(), outside any transaction (the second-factor check
    commits its own), and pass `operator.actor` to the services that act.
    """
    authenticator = _authenticator
    if authenticator is None:
        raise OperatorRefused("operator authentication is not available in this process: nothing was changed")
    credentials = operator_credentials_read(stdin=stdin or sys.stdin, stdout=stdout or sys.stderr)
    return authenticator(command=command, credentials=credentials)


class OperatorCommandMixin:
    """For a BaseCommand whose handle() changes state: a `stdin` option and `self.operator_authenticate()`.

    Like Django's createsuperuser, `stdin` is a hidden option, so tests pass
    `call_command(..., stdin=io.StringIO("email\\npassword\\ncode\\n"))`.
    Add `OPERATOR_CREDENTIALS_HELP` to the command's help.
    """

    stealth_options = ("stdin",)
    stdin: TextIO
    stderr: OutputWrapper
    # The permission the operator must hold ("app_label.codename"); superusers hold every one.
    operator_permission: str = ""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs):
        """`--help` says which permission the operator needs, from the one place it is declared."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)  # type: ignore[misc]
        if self.operator_permission:
            parser.description = (
                f"{parser.description or ''} The operator needs the permission {self.operator_permission}"
                " (superusers hold every permission)."
            )
        return parser

    def execute(self, *args, **options):
        self.stdin = options.get("stdin", sys.stdin)
        return super().execute(*args, **options)  # type: ignore[misc]

    @property
    def operator_command(self) -> str:
        """The command's name, as `manage.py` knows it: recorded with the authentication."""
        return type(self).__module__.rsplit(".", 1)[-1]

    def operator_authenticate(self) -> Operator:
        """The authenticated operator, who must also hold `operator_permission` (refused otherwise, nothing done)."""
        operator = operator_authenticate(command=self.operator_command, stdin=self.stdin, stdout=self.stderr)
        if not self.operator_permission:
            raise ImproperlyConfigured(f"{self.operator_command}: an operator command names the permission it needs")
        if not operator.user.has_perm(self.operator_permission):
            raise OperatorRefused(
                f"this operator does not hold {self.operator_permission}, which {self.operator_command} needs:"
                " nothing was changed"
            )
        return operator


class OperatorCommand(OperatorCommandMixin, BaseCommand):
    """A BaseCommand that authenticates its operator: call `self.operator_authenticate()` first in handle()."""
