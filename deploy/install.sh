#!/usr/bin/env bash
# Installs the fintech processes on one systemd host, each as its own user able to read only its own keys
# (deploy/README.md). Idempotent: run it again after every release, it only creates what is missing and
# puts owners and modes back. It never creates or prints key material (see "Provisioning keys").
# Not run by the tests; fintech/tests/test_deploy_files.py checks the tables below against
# fintech/process_keys.py and the unit files.
#
#   sudo deploy/install.sh            # from the release checked out at /opt/fintech (with its .venv)
set -euo pipefail

APP=/opt/fintech
ETC=/etc/fintech
UNITS=/etc/systemd/system
SOURCE=$(cd "$(dirname "$0")/.." && pwd)

# One OS user (and group of the same name) per process; none has a shell or a home.
PROCESSES="web worker certworker beat vault ops terminator"

# Private key files, delivered by systemd as credentials (LoadCredential=) to the units that list them:
# root:root 0600 in $ETC/credentials/, which only root can enter. No service user reads them directly.
#   file                           key (fintech/process_keys.py)
CREDENTIALS="
oidc-signing-key.pem            oidc_signing_key
audit-signing-key.pem           audit_signing_key
staff-grant-signing-key.pem     staff_grant_signing_key
pki-issuing-key.pem             pki_issuing_key
vault-client-web.pem            vault_client_certificate
vault-client-web.key.pem        vault_client_certificate
vault-client-worker.pem         vault_client_certificate
vault-client-worker.key.pem     vault_client_certificate
terminator-server.pem           terminator_server_key
terminator-server.key.pem       terminator_server_key
"

# Key rings a process writes (rotation), in its own state directory: owned by its user, 0700, files 0600.
#   process   key         directory
KEY_DIRECTORIES="
web       field_kek   /var/lib/fintech-web/field-kek
vault     vault_kek   /var/lib/fintech-vault/vault-kek
"

# Public keys: readable by everyone (they prove, they sign nothing).
PUBLIC_KEYS="audit-verify-key.pem staff-grant-verify-key.pem"

# gunicorn listens on each process's Unix socket only: /run/fintech-web/web.sock, /run/fintech-vault/vault.sock,
# sockets 0660 in directories 0750 owned by the process's user and group. Two nginx reach them through those groups:
# - the TLS terminator (fintech-terminator.service: the vault's mutual TLS, the partners' listener) reaches both,
#   through its unit's SupplementaryGroups=fintech-web fintech-vault (its user is no member outside that unit);
# - the host's public nginx (the proxy in front of the web) reaches the web's alone: its user joins SOCKET_GROUPS.
#   It is taken out of fintech-vault, which it joined before the terminator had a unit of its own: only the
#   terminator, which requires a platform client certificate, may reach the vault.
# NGINX_USER=nginx for distributions whose nginx runs as "nginx".
NGINX_USER=${NGINX_USER:-www-data}
SOCKET_GROUPS="fintech-web"
NOT_SOCKET_GROUPS="fintech-vault"

say() { printf '%s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  say "run as root: it creates users and sets owners of key files" >&2
  exit 1
fi
if [ "$SOURCE" != "$APP" ]; then
  say "!! this release is at $SOURCE; the units run $APP (copy or link the release there)" >&2
fi
if [ ! -x "$APP/.venv/bin/python" ]; then
  say "!! $APP/.venv is missing: create it (python3 -m venv $APP/.venv; $APP/.venv/bin/pip install -r requirements.txt)" >&2
fi

say "== users"
for process in $PROCESSES; do
  user="fintech-$process"
  if ! getent passwd "$user" >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
    say "created $user"
  fi
done

say "== nginx's user ($NGINX_USER) may reach the web's socket (its group), not the vault's"
if getent passwd "$NGINX_USER" >/dev/null; then
  for group in $SOCKET_GROUPS; do
    if ! id -nG "$NGINX_USER" | tr ' ' '\n' | grep -qx "$group"; then
      usermod --append --groups "$group" "$NGINX_USER"
      say "added $NGINX_USER to $group (restart nginx for it to take effect)"
    fi
  done
  for group in $NOT_SOCKET_GROUPS; do
    if id -nG "$NGINX_USER" | tr ' ' '\n' | grep -qx "$group"; then
      gpasswd --delete "$NGINX_USER" "$group" >/dev/null
      say "removed $NGINX_USER from $group: fintech-terminator.service fronts the vault (restart nginx)"
    fi
  done
else
  say "!! no user $NGINX_USER: install nginx, or set NGINX_USER, then run this again (deploy/README.md, nginx in front)"
fi

say "== code: root-owned, read-only for the services"
chown -R root:root "$APP"
chmod -R go-w "$APP"

say "== $ETC: environment files (root 0600), credentials (root 0700/0600), public keys (0644)"
install -d -m 0755 -o root -g root "$ETC" "$ETC/public"
install -d -m 0700 -o root -g root "$ETC/credentials"
for template in "$SOURCE"/deploy/env/*.env; do
  name=$(basename "$template")
  if [ ! -e "$ETC/$name" ]; then
    install -m 0600 -o root -g root "$template" "$ETC/$name"
    say "created $ETC/$name from its template: fill in its secrets"
  fi
  chown root:root "$ETC/$name"
  chmod 0600 "$ETC/$name"
done
while read -r file key; do
  [ -n "$file" ] || continue
  path="$ETC/credentials/$file"
  if [ -e "$path" ]; then
    chown root:root "$path"
    chmod 0600 "$path"
  else
    say "!! missing $path ($key): provision it (deploy/README.md, Provisioning keys)"
  fi
done <<<"$CREDENTIALS"
for file in $PUBLIC_KEYS; do
  path="$ETC/public/$file"
  if [ -e "$path" ]; then
    chown root:root "$path"
    chmod 0644 "$path"
  else
    say "!! missing $path: provision it (deploy/README.md, Provisioning keys)"
  fi
done

say "== state directories: each process's own, 0700"
for process in $PROCESSES; do
  install -d -m 0700 -o "fintech-$process" -g "fintech-$process" "/var/lib/fintech-$process"
done
while read -r process key directory; do
  [ -n "$process" ] || continue
  install -d -m 0700 -o "fintech-$process" -g "fintech-$process" "$directory"
  chown -R "fintech-$process:fintech-$process" "$directory"
  find "$directory" -type f -exec chmod 0600 {} +
  if [ -z "$(ls -A "$directory")" ]; then
    say "!! $directory ($key) is empty: provision its first key version (deploy/README.md)"
  fi
done <<<"$KEY_DIRECTORIES"

say "== the sealer's checkpoint export: the worker appends, ops reads (audit_verify, ADR 0005)"
# Signed public data, no key. The worker's state directory stays 0700; fintech-ops gets read access to this one
# directory and its file through ACLs, and fintech-ops.service binds it read-only (BindReadOnlyPaths=). The default
# ACL makes the worker's new checkpoints.jsonl readable by fintech-ops despite the worker's UMask=0077.
export_dir=/var/lib/fintech-worker/audit-checkpoints
install -d -m 0700 -o fintech-worker -g fintech-worker "$export_dir"
if command -v setfacl >/dev/null; then
  setfacl -m u:fintech-ops:rx -m d:u:fintech-ops:r "$export_dir"
  if [ -e "$export_dir/checkpoints.jsonl" ]; then
    setfacl -m u:fintech-ops:r "$export_dir/checkpoints.jsonl"
  fi
else
  say "!! setfacl is missing (apt-get install acl): fintech-manage ops audit_verify cannot read $export_dir"
fi

say "== systemd units and fintech-manage"
install -m 0644 -o root -g root "$SOURCE"/deploy/systemd/*.service "$SOURCE"/deploy/systemd/*.target "$UNITS/"
install -m 0755 -o root -g root "$SOURCE/deploy/fintech-manage" /usr/local/sbin/fintech-manage
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable fintech.target >/dev/null
fi

say "Done. Next: fill $ETC/*.env, provision the keys, then"
say "  systemctl start fintech-migrate fintech-vault-migrate && systemctl start fintech.target"
