"""deploy/ follows fintech/process_keys.py: each process its own user, and only its own keys (issue 12 item 6).

Parses the systemd units, the environment file templates, install.sh and the
key table of deploy/README.md, so none of them can drift from the rule the
settings and the deploy check enforce.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
from pathlib import Path

import pytest

from fintech.process_keys import (
    KEYS,
    PROCESS_KEYS,
    PROCESS_REQUIRED_VARIABLES,
    PROCESS_SETTINGS_MODULE,
    PROCESS_VARIABLE,
    PROCESSES,
    PROCESSES_ON_A_UNIX_SOCKET,
    PROCESSES_WITHOUT_DATABASE,
    SOCKET_VARIABLE,
    variable_keys,
)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = {process: f"fintech-{process}.service" for process in PROCESSES}
MIGRATIONS = {"fintech-migrate.service": "ops", "fintech-vault-migrate.service": "vault"}
OWNER_VARIABLES = {"DATABASE_OWNER_URL", "VAULT_DATABASE_OWNER_URL"}
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "UMask": "0077",
    "ReadOnlyPaths": "/opt/fintech",
}


def unit_settings(path: Path) -> dict[str, list[str]]:
    """{name: [values]} of a unit's [Service] section."""
    values: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            name, _, value = line.partition("=")
            values.setdefault(name, []).append(value)
    return values


def unit_environment(service: dict[str, list[str]]) -> dict[str, str]:
    """Environment= assignments (one per line in our units) plus every variable of its EnvironmentFile templates."""
    environment = dict(assignment.split("=", 1) for assignment in service.get("Environment", []))
    for path in service["EnvironmentFile"]:
        environment.update(env_template(path))
    return environment


def env_template(installed_path: str) -> dict[str, str]:
    assert installed_path.startswith("/etc/fintech/") and installed_path.endswith(".env"), installed_path
    template = DEPLOY / "env" / Path(installed_path).name
    assert template.is_file(), f"{installed_path} has no template in deploy/env/"
    lines = [line for line in template.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def unit_process(service: dict[str, list[str]]) -> str:
    return unit_environment(service)[PROCESS_VARIABLE]


def all_units() -> dict[str, dict[str, list[str]]]:
    return {path.name: unit_settings(path) for path in sorted((DEPLOY / "systemd").glob("*.service"))}


def test_every_process_has_a_unit_and_every_unit_is_a_process():
    units = all_units()

    assert set(units) == set(SERVICES.values()) | set(MIGRATIONS)
    for name, service in units.items():
        process = MIGRATIONS.get(name) or name.removeprefix("fintech-").removesuffix(".service")
        assert unit_process(service) == process, name
        assert unit_environment(service)["DJANGO_SETTINGS_MODULE"] == PROCESS_SETTINGS_MODULE[process], name


def test_each_process_runs_as_its_own_user():
    units = all_units()

    users = {}
    for name, service in units.items():
        process = unit_process(service)
        assert service["User"] == [f"fintech-{process}"], name
        assert service["Group"] == [f"fintech-{process}"], name
        assert "DynamicUser" not in service, name  # key rings need a stable owner
        users.setdefault(process, set()).update(service["User"])
    assert all(len(names) == 1 for names in users.values())
    assert len({user for names in users.values() for user in names}) == len(PROCESSES)


@pytest.mark.parametrize("name", sorted(all_units()))
def test_each_unit_gives_its_process_only_the_keys_its_role_holds(name):
    service = all_units()[name]
    process = unit_process(service)
    environment = unit_environment(service)
    carried = variable_keys()

    given = {carried[variable] for variable, value in environment.items() if variable in carried}

    assert given <= PROCESS_KEYS[process], f"{name} gives {process} {sorted(given - PROCESS_KEYS[process])}"
    required = {key for key in PROCESS_KEYS[process] if KEYS[key].required}
    assert required <= given, f"{name} lacks {sorted(required - given)}"
    for key in required:  # a certificate and its key: both
        assert set(KEYS[key].variables[: KEYS[key].required_variables]) <= set(environment), f"{name}: {key}"
    assert set(PROCESS_REQUIRED_VARIABLES[process]) <= set(environment), name
    if process in PROCESSES_WITHOUT_DATABASE:
        assert not {v for v in environment if v.endswith("DATABASE_URL") or v in OWNER_VARIABLES}, name


@pytest.mark.parametrize("name", sorted(all_units()))
def test_each_key_reaches_its_process_the_way_its_form_says(name):
    service = all_units()[name]
    environment = unit_environment(service)
    carried = variable_keys()
    credentials = dict(line.split(":", 1) for line in service.get("LoadCredential", []))
    state_directories = [f"/var/lib/{directory}/" for directory in service.get("StateDirectory", [])]

    for variable, value in environment.items():
        if variable not in carried:
            continue
        form = KEYS[carried[variable]].form
        if form == "file":  # a systemd credential: only this unit's user can read its copy
            assert value.startswith("%d/"), f"{name}: {variable} is not a credential"
            credential = value.removeprefix("%d/")
            assert credentials.get(credential) == f"/etc/fintech/credentials/{credential}", name
        elif form == "directory":  # a key ring in the process's own state directory (0700)
            assert any(value.startswith(directory) for directory in state_directories), f"{name}: {variable}"
            assert service["StateDirectoryMode"] == ["0700"], name
        elif form == "public":
            assert all(path.startswith("/etc/fintech/public/") for path in value.split(",")), f"{name}: {variable}"
        else:  # a value: only in the process's root-only environment file, never in the unit (world-readable)
            assert variable not in dict(a.split("=", 1) for a in service.get("Environment", [])), name
    # Every credential the unit loads is a key its process holds (checked above through its variable).
    referenced = {value.removeprefix("%d/") for value in environment.values() if value.startswith("%d/")}
    assert set(credentials) == referenced, name


def test_a_credential_file_is_always_the_same_key_and_install_sh_knows_it():
    install = (DEPLOY / "install.sh").read_text()
    table = re.search(r'CREDENTIALS="\n(.*?)\n"', install, re.DOTALL).group(1)
    declared = dict(line.split() for line in table.splitlines() if line.strip())
    carried = variable_keys()

    seen: dict[str, str] = {}
    for service in all_units().values():
        for variable, value in unit_environment(service).items():
            if variable in carried and value.startswith("%d/"):
                credential = value.removeprefix("%d/")
                assert seen.setdefault(credential, carried[variable]) == carried[variable], credential
    assert seen == declared
    assert all(KEYS[key].form == "file" for key in declared.values())


def test_install_sh_creates_every_user_and_gives_each_key_ring_to_its_holder():
    install = (DEPLOY / "install.sh").read_text()
    processes = re.search(r'^PROCESSES="([^"]+)"', install, re.MULTILINE).group(1).split()
    rings = re.search(r'KEY_DIRECTORIES="\n(.*?)\n"', install, re.DOTALL).group(1)

    assert sorted(processes) == sorted(PROCESSES)
    for line in rings.splitlines():
        if not line.strip():
            continue
        process, key, directory = line.split()
        assert KEYS[key].form == "directory" and key in PROCESS_KEYS[process]
        assert directory.startswith(f"/var/lib/fintech-{process}/")
        holder = unit_environment(all_units()[SERVICES[process]])
        assert holder[KEYS[key].variables[0]] == directory
    assert {line.split()[1] for line in rings.splitlines() if line.strip()} == {
        name for name, key in KEYS.items() if key.form == "directory"
    }


def test_environment_files_hold_no_secret_and_are_never_shared_between_processes():
    owners: dict[str, set[str]] = {}
    for service in all_units().values():
        for path in service["EnvironmentFile"]:
            owners.setdefault(path, set()).add(unit_process(service))
    assert all(len(processes) == 1 for processes in owners.values()), owners
    assert {Path(path).name for path in owners} == {path.name for path in (DEPLOY / "env").glob("*.env")}

    carried = variable_keys()
    for template in (DEPLOY / "env").glob("*.env"):
        for variable, value in env_template(f"/etc/fintech/{template.name}").items():
            if (variable in carried and KEYS[carried[variable]].form == "value") or "PASSWORD" in value:
                assert value == "", f"{template.name}: {variable} must stay empty in the repository"
            if variable in OWNER_VARIABLES:  # the owner's login: only for the migrate units
                assert template.name.endswith("migrate.env"), template.name


@pytest.mark.parametrize("name", sorted(all_units()))
def test_each_unit_is_hardened_and_blind_to_the_other_processes(name):
    service = all_units()[name]
    process = unit_process(service)

    for directive, value in HARDENING.items():
        assert service.get(directive) == [value], f"{name}: {directive}"
    hidden = set(" ".join(service["InaccessiblePaths"]).split())
    assert hidden == {f"-/var/lib/fintech-{other}" for other in PROCESSES if other != process}, name
    assert service["StateDirectory"] == [f"fintech-{process}"], name


def test_each_service_refuses_to_start_when_its_deploy_check_fails():
    for name in SERVICES.values():
        service = all_units()[name]
        commands = service.get("ExecStartPre", []) + service.get("ExecStart", [])
        assert any(command.endswith("manage.py check --deploy --fail-level WARNING") for command in commands), name


@pytest.mark.parametrize("process", PROCESSES_ON_A_UNIX_SOCKET)
def test_web_and_vault_listen_on_a_socket_in_their_own_runtime_directory_only(process):
    """What fintech.checks.process_bind_check demands at ExecStartPre (fintech.E007/E008), already in the files."""
    service = all_units()[SERVICES[process]]
    environment = unit_environment(service)

    socket_path = Path(environment[SOCKET_VARIABLE])
    assert service["RuntimeDirectory"] == [f"fintech-{process}"]
    assert socket_path.parent == Path("/run") / f"fintech-{process}"
    assert service["RuntimeDirectoryMode"] == ["0750"]  # the group (nginx's user joins it) enters; others do not
    assert not {"BIND_ADDRESS", "PORT"} & set(environment)
    # The terminator reaches both sockets through its unit's groups; no other unit joins a socket's group.
    assert f"fintech-{process}" in all_units()["fintech-terminator.service"]["SupplementaryGroups"][0].split()
    joined = [name for name, unit in all_units().items() if "SupplementaryGroups" in unit]
    assert joined == ["fintech-terminator.service"]


def test_only_the_terminator_reaches_the_vault_socket_and_the_public_nginx_only_the_web():
    """The host's nginx (the web's public proxy) joins fintech-web alone, and is taken out of fintech-vault."""
    install = (DEPLOY / "install.sh").read_text()

    def groups(name: str) -> list[str]:
        return re.search(rf'^{name}="([^"]+)"', install, re.MULTILINE).group(1).split()

    assert groups("SOCKET_GROUPS") == ["fintech-web"]
    assert groups("NOT_SOCKET_GROUPS") == ["fintech-vault"]


def test_the_terminator_unit_fronts_the_web_and_vault_sockets_without_a_capability():
    service = all_units()["fintech-terminator.service"]
    environment = unit_environment(service)
    sockets = {name: unit_environment(all_units()[SERVICES[name]])[SOCKET_VARIABLE] for name in ("web", "vault")}

    assert service["ExecStart"] == ["/opt/fintech/.venv/bin/python manage.py tls_terminator"]
    assert environment["PKI_TERMINATOR_VAULT_UPSTREAM"] == f"http://unix:{sockets['vault']}:"
    assert environment["PKI_TERMINATOR_WEB_SOCKET"] == sockets["web"]
    # nginx's prefix (a copy of the server key) in its own runtime directory, which nobody else may enter.
    assert environment["PKI_TLS_DIR"] == "/run/fintech-terminator"
    assert service["RuntimeDirectory"] == ["fintech-terminator"] and service["RuntimeDirectoryMode"] == ["0700"]
    # High ports: no CAP_NET_BIND_SERVICE (the hardening above asserts no capability at all).
    for variable in ("PKI_TERMINATOR_VAULT_LISTEN", "PKI_TERMINATOR_PARTNER_LISTEN"):
        assert int(environment[variable].rpartition(":")[2]) >= 1024, variable


def test_only_the_cert_worker_consumes_the_cert_queue_one_task_at_a_time():
    def queues(process: str) -> tuple[list[str], list[str]]:
        command = all_units()[SERVICES[process]]["ExecStart"][0].split()
        return command[command.index("--queues") + 1].split(","), command

    worker_queues, _ = queues("worker")
    cert_queues, command = queues("certworker")

    assert worker_queues == ["celery"]
    assert cert_queues == ["cert"] and command[command.index("--concurrency") + 1] == "1"


def test_the_key_table_in_deploy_readme_is_the_rule():
    text = (DEPLOY / "README.md").read_text()
    header = re.search(r"^\| key \| variables \| form \| (.+) \|$", text, re.MULTILINE)
    columns = [column.strip() for column in header.group(1).split("|")]
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| (\w+) \| (.*) \|$", text, re.MULTILINE)

    assert columns == list(PROCESSES)
    table = {}
    for key, variables, form, cells in rows:
        assert re.findall(r"`(\w+)`", variables) == list(KEYS[key].variables), key
        assert form == KEYS[key].form, key
        marks = [cell.strip() for cell in cells.split("|")]
        table[key] = {process for process, mark in zip(columns, marks, strict=True) if mark == "✓"}
    assert table == {key: {p for p in PROCESSES if key in PROCESS_KEYS[p]} for key in KEYS}


def test_fintech_manage_runs_a_command_with_its_process_unit_settings():
    loader = importlib.machinery.SourceFileLoader("fintech_manage", str(DEPLOY / "fintech-manage"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("fintech_manage", loader))
    loader.exec_module(module)
    unit = (DEPLOY / "systemd" / "fintech-ops.service").read_text()

    arguments = module.systemd_run_arguments("ops", unit, ["vault_grant", "vault_rotate_key"], run_id="7")

    assert arguments[-3:] == ["manage.py", "vault_grant", "vault_rotate_key"]
    assert "--property=User=fintech-ops" in arguments
    assert "--property=EnvironmentFile=/etc/fintech/ops.env" in arguments
    credentials = "/run/credentials/fintech-manage-ops-7.service"
    assert f"--property=Environment=STAFF_GRANT_SIGNING_KEY_PATH={credentials}/staff-grant-signing-key.pem" in arguments
    assert not [argument for argument in arguments if "ExecStart" in argument or "%d" in argument]
    assert set(module.PROCESSES) <= set(PROCESSES) | {"migrate"} and "beat" not in module.PROCESSES
