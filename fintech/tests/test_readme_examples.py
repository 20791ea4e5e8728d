"""The README's "Try the OAuth flow" shell blocks, taken from README.md itself and run against a live server.

So the text cannot drift from the behaviour: each command runs in one bash
session, in order, as a newcomer would paste it; the comment after a command
is its documented answer, and is checked against what it printed ("prints
nothing", or the JSON fields it quotes: `"active": true`, `"code":
"invalid_api_key"`, a value ending in `…` being a prefix). The browser step
(sign in as alice, allow access) is driven with `requests` through the same
login and consent forms a browser gets; the two placeholder lines the reader
fills in (`CODE=...`, `API_KEY=fk_live_...`) get the values from that step
and from the command's own output, and `BASE` points at the test's server.

The blocks run in a scratch "checkout" (`var/` written by `demo_seed`,
`.venv` and `manage.py` linked to the real ones): a file the README wrote
outside `$SCRATCH` would show up there, and nothing may be left in the real
working tree either.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import uuid
from html.parser import HTMLParser
from io import StringIO
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from django.core.management import call_command
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from conftest import ROOT, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
README = ROOT / "README.md"
SECTION = "## Try the OAuth flow"
CUSTOMER = "alice@demo.fintech.example"
SECURITY_ADMIN = "security@demo.fintech.example"
PLACEHOLDERS = {"CODE=...": "CODE", "API_KEY=fk_live_...": "API_KEY"}
KEY_PATTERN = re.compile(r"fk_live_[a-z2-7]{8}_[A-Za-z0-9_-]{43}")


# --- Reading the README -------------------------------------------------------------------


def readme_blocks() -> list[str]:
    """The ```sh blocks of the OAuth section, in order."""
    text = README.read_text()
    section = text[text.index(SECTION) : text.index("\n## ", text.index(SECTION) + 1)]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def commands_of(block: str) -> list[tuple[str, str]]:
    """(command, documented answer) per logical line: continuations joined, the trailing `# …` comment apart."""
    commands, pending = [], ""
    for line in block.splitlines():
        pending += line + "\n"
        if line.rstrip().endswith("\\"):
            continue
        command, comment = split_comment(pending.rstrip("\n"))
        commands.append((command, comment))
        pending = ""
    return commands


def split_comment(command: str) -> tuple[str, str]:
    """A `#` that starts a comment: after whitespace and outside quotes (URLs and JSON keep theirs)."""
    quote = None
    for index, char in enumerate(command):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and index > 0 and command[index - 1] in " \t":
            return command[:index].rstrip(), command[index + 1 :].strip()
    return command, ""


def documented_fields(comment: str) -> dict[str, object]:
    """The JSON members a comment quotes: `"key": "value"`, true/false/null or a number."""
    fields = {}
    for key, value in re.findall(r'"(\w+)": ("[^"]*"|true|false|null|-?\d+)', comment):
        fields[key] = json.loads(value)
    return fields


def check_answer(command: str, comment: str, output: str) -> bool:
    """The output is what the comment after the command says it is; False when the comment claims nothing checkable."""
    if "prints nothing" in comment:
        assert output.strip() == "", (command, output)
        return True
    fields = documented_fields(comment)
    if not fields:
        return False
    answer = json.loads(output)
    for key, expected in fields.items():
        assert key in answer, (command, key, answer)
        if isinstance(expected, str) and "…" in expected:
            assert str(answer[key]).startswith(expected.split("…")[0]) and answer[key], (command, key, answer)
        else:
            assert answer[key] == expected, (command, key, answer)
    return True


# --- A bash session the blocks are pasted into --------------------------------------------


class Shell:
    """One bash reading commands from a pipe, as a terminal session would; output collected per command."""

    def __init__(self, cwd: Path, env: dict[str, str]):
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)

    def run(self, command: str, *, input_lines: tuple[str, ...] = (), timeout_seconds: float = 60) -> str:
        """Run `command` (its stdin: `input_lines`, as typed at its prompts); its output; fail on a non-zero status."""
        marker = f"@@done-{uuid.uuid4().hex}"
        if input_lines:  # a here-document: the command's buffered stdin must not swallow the session's next lines
            command = "\n".join([f"{command} <<'{marker}'", *input_lines, marker])
        script = f'{command}\n__status=$?; echo; echo "{marker} $__status"\n'
        self.process.stdin.write(script)
        self.process.stdin.flush()
        output = []
        while True:
            try:
                line = self.lines.get(timeout=timeout_seconds)
            except queue.Empty:
                pytest.fail(f"no answer within {timeout_seconds}s to: {command}\n{''.join(output)}")
            if line.startswith(marker):
                status = int(line.split()[1])
                break
            output.append(line)
        text = "".join(output).rstrip("\n")  # with the newline echoed before the marker
        assert status == 0, f"{command}\nexit {status}\n{text}"
        return text

    def value(self, name: str) -> str:
        return self.run(f'printf "%s" "${name}"')

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


# --- The browser step ---------------------------------------------------------------------


class FormReader(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attributes.get("action") or "", "fields": {}})
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value") or ""


def browser_consents(url: str, *, email: str, password: str) -> str:
    """What the reader does with the printed URL: sign in, allow access. Returns the callback URL."""
    browser = requests.Session()
    response = browser.get(url, allow_redirects=False, timeout=10)
    for _ in range(10):
        if response.status_code == 302:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith("http://127.0.0.1:8765/callback"):
                return location
            response = browser.get(location, allow_redirects=False, timeout=10)
            continue
        assert response.status_code == 200, (response.status_code, response.text[:300])
        reader = FormReader()
        reader.feed(response.text)
        form = next(form for form in reader.forms if {"password", "client_id"} & set(form["fields"]))
        values = {"username": email, "password": password} if "password" in form["fields"] else {"allow": "Authorize"}
        action = urljoin(response.url, form["action"]) if form["action"] else response.url
        response = browser.post(action, data={**form["fields"], **values}, headers={"Referer": response.url},
                                allow_redirects=False, timeout=10)  # fmt: skip
    pytest.fail("the browser never reached the callback")


def totp_now(email: str) -> str:
    device = TOTPDevice.objects.get(user__email=email, confirmed=True)
    return f"{TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token():06d}"


# --- The test -----------------------------------------------------------------------------


def untracked_files() -> set[str]:
    """Untracked and ignored paths of the real working tree (caches aside)."""
    listed = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {line[3:] for line in listed.splitlines() if line[:2] in ("??", "!!") and "__pycache__" not in line}


def checkout_files(checkout: Path) -> set[str]:
    return {str(path.relative_to(checkout)) for path in checkout.rglob("*") if ".venv" not in path.parts}


def test_the_readme_oauth_examples_answer_what_the_readme_says(live_server_process, tmp_path, settings):
    blocks = readme_blocks()
    assert len(blocks) == 4, "the README's OAuth section has four shell blocks, run in order"
    commands = [command for block in blocks for command in commands_of(block)]
    texts = [command for command, _ in commands]
    assert "BASE=http://127.0.0.1:8000" in texts
    for placeholder in PLACEHOLDERS:
        assert any(text.startswith(placeholder) for text in texts), placeholder

    checkout = tmp_path / "checkout"
    settings.VAR_DIR = checkout / "var"
    settings.VAR_DIR.mkdir(parents=True)
    call_command("demo_seed", stdout=StringIO())  # what `make run` leaves in var/ and the database
    (checkout / ".venv").symlink_to(ROOT / ".venv")
    (checkout / "manage.py").symlink_to(ROOT / "manage.py")
    passwords = json.loads((settings.VAR_DIR / "demo-logins.json").read_text())["passwords"]
    checkout_before, tree_before = checkout_files(checkout), untracked_files()

    shell = Shell(checkout, {**subprocess_env(), "TMPDIR": str(tmp_path)})
    values: dict[str, str] = {}
    checked: list[str] = []
    try:
        for documented, comment in commands:
            command = documented
            if command == "BASE=http://127.0.0.1:8000":
                command = f"BASE={live_server_process.url}"  # the test's server instead of `make run`'s
            for placeholder, name in PLACEHOLDERS.items():
                if command.startswith(placeholder):
                    command = f"{name}={values[name]}"
            input_lines: tuple[str, ...] = ()
            if "manage.py partner_api_key_issue" in command:
                input_lines = (SECURITY_ADMIN, passwords[SECURITY_ADMIN], totp_now(SECURITY_ADMIN))
            output = shell.run(command, input_lines=input_lines)

            if command.startswith("SCRATCH="):
                scratch = Path(shell.value("SCRATCH"))
                assert scratch.is_dir() and ROOT not in scratch.parents and checkout not in scratch.parents
            elif command.startswith('echo "$BASE/o/authorize/'):
                assert output.startswith(f"{live_server_process.url}/o/authorize/?"), output
                callback = browser_consents(output, email=CUSTOMER, password=passwords[CUSTOMER])
                query = parse_qs(urlsplit(callback).query)
                assert query.get("state") == ["xyz"] and query.get("iss") == [live_server_process.url], callback
                values["CODE"] = query["code"][0]
            elif "manage.py partner_api_key_issue" in command:
                (values["API_KEY"],) = set(KEY_PATTERN.findall(output))
            if check_answer(command, comment, output):
                checked.append(comment)
        assert not scratch.exists(), "the last block removes the scratch directory"
        answers = " | ".join(checked)
        for documented in ('"active": true', '"active": false', '"invalid_grant"', '"invalid_api_key"', '"email"'):
            assert documented in answers, f"the README no longer documents (or the test no longer checks) {documented}"
        assert len(checked) >= 9, checked
    finally:
        shell.close()

    assert checkout_files(checkout) == checkout_before, "the README wrote outside its scratch directory"
    # Another change may be under way in the same tree (ledger/): only what the README could have written counts.
    new_files = {path for path in untracked_files() - tree_before if not path.startswith("ledger/")}
    assert not new_files, f"left in the working tree: {sorted(new_files)}"
    assert not (ROOT / "tokens.json").exists() and not (ROOT / "var" / "tokens.json").exists()


def test_the_docs_authorize_popup_lands_on_swagger_uis_redirect_page(live_server_process):
    """The README's "From the docs page": the registered redirect serves Swagger UI's page and its script."""
    base = live_server_process.url
    page = requests.get(f"{base}/v1/docs/oauth2-redirect.html?code=abc&state=xyz", timeout=10)

    assert page.status_code == 200 and "oauth2-redirect.js" in page.text
    assert urlsplit(page.url).query == "code=abc&state=xyz"
    script = requests.get(urljoin(page.url, "oauth2-redirect.js"), timeout=10)
    assert script.status_code == 200 and "swaggerUIRedirectOauth2" in script.text
