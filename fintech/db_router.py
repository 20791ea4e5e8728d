"""Keeps the token vault's tables in the `vault` database and everything else out of it."""

VAULT_APPS = frozenset({"tokenvault"})


def _alias_for(app_label: str) -> str:
    return "vault" if app_label in VAULT_APPS else "default"


class DomainDatabaseRouter:
    def db_for_read(self, model, **hints):
        return _alias_for(model._meta.app_label)

    def db_for_write(self, model, **hints):
        return _alias_for(model._meta.app_label)

    def allow_relation(self, obj1, obj2, **hints):
        # A foreign key across databases cannot be enforced; refuse it.
        return _alias_for(obj1._meta.app_label) == _alias_for(obj2._meta.app_label)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == _alias_for(app_label)
