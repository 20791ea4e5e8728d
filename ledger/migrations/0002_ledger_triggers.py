"""What the database itself guarantees about the ledger, whoever writes to it.

1. Postings are append-only: plain PL/pgSQL triggers refuse UPDATE, DELETE and
   TRUNCATE, enabled ALWAYS so that session_replication_role = replica cannot
   skip them (the audit pattern, audit/migrations/0002_write_once.py). The
   runtime role also holds only INSERT and SELECT (LedgerConfig.write_once_models).
2. Every transfer balances: a constraint trigger, DEFERRABLE INITIALLY
   DEFERRED, runs for each inserted posting at COMMIT and refuses the commit
   if that posting's transfer does not sum to zero in every currency, or if the
   posting's currency is not its account's. Deferred, because postings of one
   transfer are inserted one statement at a time; at COMMIT all are there.
3. Every transfer has postings: a deferred constraint trigger on transfers.
4. Transfers change in one way only: `reversed_minor` grows. Any other UPDATE,
   and DELETE, is refused. (No TRUNCATE trigger here: the test flush empties
   this table, and TRUNCATE needs the table owner anyway.)
"""

from django.db import migrations

FUNCTIONS = """
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE OR REPLACE FUNCTION ledger_check_posting_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    account_currency text;
    imbalance record;
BEGIN
    SELECT a.currency INTO account_currency FROM ledger_ledgeraccount a WHERE a.id = NEW.account_id;
    IF account_currency IS DISTINCT FROM NEW.currency THEN
        RAISE EXCEPTION 'ledger posting % is in % but account % is in %',
            NEW.id, NEW.currency, NEW.account_id, account_currency
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT p.currency, sum(p.amount_minor) AS total INTO imbalance
        FROM ledger_posting p
        WHERE p.transfer_id = NEW.transfer_id
        GROUP BY p.currency
        HAVING sum(p.amount_minor) <> 0
        LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transfer % does not balance: its % postings sum to %',
            NEW.transfer_id, imbalance.currency, imbalance.total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ledger_check_transfer_has_postings() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ledger_posting p WHERE p.transfer_id = NEW.id) THEN
        RAISE EXCEPTION 'ledger transfer % has no postings', NEW.id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ledger_guard_transfer_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'ledger transfers are never deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (to_jsonb(NEW) - 'reversed_minor') IS DISTINCT FROM (to_jsonb(OLD) - 'reversed_minor')
       OR NEW.reversed_minor < OLD.reversed_minor THEN
        RAISE EXCEPTION 'ledger transfer %: only reversed_minor may change, and only upwards', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
"""

TRIGGERS = """
CREATE TRIGGER ledger_posting_write_once BEFORE UPDATE OR DELETE ON ledger_posting
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_posting_no_truncate BEFORE TRUNCATE ON ledger_posting
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE CONSTRAINT TRIGGER ledger_posting_balanced AFTER INSERT ON ledger_posting
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_posting_balanced();
CREATE CONSTRAINT TRIGGER ledger_transfer_has_postings AFTER INSERT ON ledger_transfer
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_transfer_has_postings();
CREATE TRIGGER ledger_transfer_guard BEFORE UPDATE OR DELETE ON ledger_transfer
    FOR EACH ROW EXECUTE FUNCTION ledger_guard_transfer_change();
ALTER TABLE ledger_posting ENABLE ALWAYS TRIGGER ledger_posting_write_once;
ALTER TABLE ledger_posting ENABLE ALWAYS TRIGGER ledger_posting_no_truncate;
ALTER TABLE ledger_posting ENABLE ALWAYS TRIGGER ledger_posting_balanced;
ALTER TABLE ledger_transfer ENABLE ALWAYS TRIGGER ledger_transfer_has_postings;
ALTER TABLE ledger_transfer ENABLE ALWAYS TRIGGER ledger_transfer_guard;
"""

BACKWARDS = """
DROP TRIGGER IF EXISTS ledger_transfer_guard ON ledger_transfer;
DROP TRIGGER IF EXISTS ledger_transfer_has_postings ON ledger_transfer;
DROP TRIGGER IF EXISTS ledger_posting_balanced ON ledger_posting;
DROP TRIGGER IF EXISTS ledger_posting_no_truncate ON ledger_posting;
DROP TRIGGER IF EXISTS ledger_posting_write_once ON ledger_posting;
DROP FUNCTION IF EXISTS ledger_guard_transfer_change();
DROP FUNCTION IF EXISTS ledger_check_transfer_has_postings();
DROP FUNCTION IF EXISTS ledger_check_posting_balanced();
DROP FUNCTION IF EXISTS ledger_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunSQL(FUNCTIONS + TRIGGERS, BACKWARDS)]
