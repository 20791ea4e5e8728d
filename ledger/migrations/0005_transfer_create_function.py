"""A customer transfer as one PL/pgSQL call: one round trip instead of about fifteen.

`ledger.services.transfers` calls `ledger_transfer_create(...)` once per
transfer. Inside, in the order ADR 0009 prescribes and the Python pipeline
used before:

1. the accounts as the caller named them (API: by public id, scoped like the
   selectors: the sender's own non-platform account, any active non-platform
   destination), unlocked, with the cheap refusals (same account, currency,
   status);
2. the sender's owner spend lock (`pg_advisory_xact_lock`, the same key as
   `ledger.lock_objects.owner_spend_lock`), then the customers, the tier's
   limits and today's outgoing total, then the active rules in id order
   (threshold: flag; velocity: refuse). This is a VOLATILE function: under
   READ COMMITTED every statement takes a fresh snapshot, so everything read
   after the lock sees every transfer committed before it was granted;
3. both accounts locked in one `SELECT ... ORDER BY id FOR UPDATE`, status,
   ownership, currency and funds re-checked under the lock;
4. the transfer, the two balance UPDATEs (each checked against what the
   locked row predicts), the two postings, the `ledger.transfer.posted`
   audit event and the outbox rows.

Domain refusals are RETURNED (`r_refusal` = the stable error code,
`r_refusal_data` = the numbers its message needs), never raised: every
refusal comes before the first write, so the caller's transaction stays
usable and the HTTP layer can store the refusal as the idempotent answer
without a savepoint. A broken money invariant RAISEs SQLSTATE LG001 and the
whole transaction rolls back. The deferred zero-sum trigger and the
append-only triggers of 0002 still check every row at COMMIT.

The audit payload is built here; its one free-text field, the reference, is
passed in already scrubbed by Python (`fintech.redaction.scrub_text`).
Table names are resolved when the function runs, so the dependencies below
are for readers, not for PostgreSQL.
"""

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION ledger_transfer_create(
    p_from_id bigint,
    p_to_id bigint,
    p_receiver_id bigint,
    p_from_public_id uuid,
    p_to_public_id uuid,
    p_initiated_by bigint,
    p_amount_minor bigint,
    p_currency text,
    p_reference text,
    p_client_id text,
    p_now timestamptz,
    p_transfer_public_id uuid,
    p_amount_text text,
    p_actor_user text,
    p_actor_client text,
    p_actor_staff text,
    p_request_id text,
    p_audit_reference text,
    OUT r_refusal text,
    OUT r_refusal_data jsonb,
    OUT r_transfer_id bigint,
    OUT r_created_at timestamptz,
    OUT r_review_reasons jsonb,
    OUT r_from jsonb,
    OUT r_to jsonb,
    OUT r_outbox_ids bigint[]
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_from_id bigint;
    v_to_id bigint;
    v_receiver bigint;
    v_from ledger_ledgeraccount%ROWTYPE;
    v_to ledger_ledgeraccount%ROWTYPE;
    v_row ledger_ledgeraccount%ROWTYPE;
    v_locked int := 0;
    v_sender_status text;
    v_receiver_status text;
    v_per_transfer_max bigint;
    v_daily_max bigint;
    v_sent_today bigint;
    v_rule record;
    v_hit boolean;
    v_recent bigint;
    v_reasons jsonb := '[]'::jsonb;
    v_first ledger_ledgeraccount%ROWTYPE;
    v_second ledger_ledgeraccount%ROWTYPE;
    v_first_delta bigint;
    v_second_delta bigint;
    v_posted bigint;
    v_held bigint;
    v_version bigint;
    v_first_posted bigint;
    v_first_version bigint;
    v_second_posted bigint;
    v_second_version bigint;
    v_payload jsonb;
    v_outbox_id bigint;
    v_outbox_ids bigint[] := '{}';
    v_now timestamptz;
BEGIN
    -- 1. The accounts as named, unlocked: the refusals that need no lock.
    IF p_from_id IS NULL THEN
        SELECT * INTO v_from FROM ledger_ledgeraccount
         WHERE public_id = p_from_public_id AND owner_id = p_initiated_by AND kind <> 'platform';
        IF NOT FOUND THEN
            r_refusal := 'account_not_found';
            RETURN;
        END IF;
        SELECT * INTO v_to FROM ledger_ledgeraccount
         WHERE public_id = p_to_public_id AND status = 'active' AND kind <> 'platform';
        IF NOT FOUND THEN
            r_refusal := 'account_not_found';
            RETURN;
        END IF;
        IF v_from.id = v_to.id THEN
            r_refusal := 'same_account';
            RETURN;
        END IF;
        IF v_from.currency <> p_currency OR v_to.currency <> p_currency THEN
            r_refusal := 'currency_mismatch';
            RETURN;
        END IF;
        IF v_from.status <> 'active' OR v_to.status <> 'active' THEN
            r_refusal := 'account_not_active';
            RETURN;
        END IF;
        v_from_id := v_from.id;
        v_to_id := v_to.id;
        v_receiver := v_to.owner_id;
    ELSE
        -- The service was given account rows and has checked them already.
        v_from_id := p_from_id;
        v_to_id := p_to_id;
        v_receiver := p_receiver_id;
    END IF;

    -- 2. The owner spend lock, then limits and rules: every statement from here sees a fresh snapshot.
    PERFORM pg_advisory_xact_lock(hashtextextended('ledger.owner_spend:' || p_initiated_by, 0));
    -- Windows end when the checks run, after the wait for the lock (a caller's later clock wins: tests).
    v_now := greatest(p_now, clock_timestamp());

    SELECT sender.status,
           (SELECT receiver.status FROM accounts_customerprofile receiver WHERE receiver.user_id = v_receiver),
           l.per_transfer_max_minor,
           l.daily_outgoing_max_minor,
           (SELECT coalesce(-sum(p.amount_minor), 0)::bigint
              FROM ledger_ledgeraccount a
             CROSS JOIN LATERAL (
                   SELECT p.amount_minor, p.transfer_id FROM ledger_posting p
                    WHERE p.account_id = a.id AND p.created_at >= date_trunc('day', v_now, 'UTC')
                      AND p.amount_minor < 0) p
              JOIN ledger_transfer t ON t.id = p.transfer_id AND t.kind = 'transfer'
             WHERE a.owner_id = p_initiated_by AND a.currency = p_currency)
      INTO v_sender_status, v_receiver_status, v_per_transfer_max, v_daily_max, v_sent_today
      FROM accounts_customerprofile sender
      LEFT JOIN ledger_transferlimit l ON l.tier = sender.tier AND l.currency = p_currency
     WHERE sender.user_id = p_initiated_by;
    IF NOT FOUND THEN
        r_refusal := 'sender_not_a_customer';
        RETURN;
    END IF;
    IF v_sender_status <> 'active' OR (v_receiver_status IS NOT NULL AND v_receiver_status <> 'active') THEN
        r_refusal := 'account_not_active';
        RETURN;
    END IF;
    IF v_per_transfer_max IS NULL THEN
        r_refusal := 'limit_not_configured';
        RETURN;
    END IF;
    IF p_amount_minor > v_per_transfer_max THEN
        r_refusal := 'limit_per_transfer_exceeded';
        r_refusal_data := jsonb_build_object('limit_minor', v_per_transfer_max);
        RETURN;
    END IF;
    IF v_sent_today + p_amount_minor > v_daily_max THEN
        r_refusal := 'limit_daily_exceeded';
        r_refusal_data := jsonb_build_object(
            'limit_minor', v_daily_max, 'remaining_minor', greatest(v_daily_max - v_sent_today, 0));
        RETURN;
    END IF;

    FOR v_rule IN
        SELECT name, kind, currency, threshold_minor, max_count, window_minutes, action
          FROM ledger_transferrule WHERE active ORDER BY id LIMIT 100
    LOOP
        CONTINUE WHEN v_rule.currency <> '' AND v_rule.currency <> p_currency;
        IF v_rule.kind = 'review_threshold' THEN
            v_hit := p_amount_minor >= v_rule.threshold_minor;
        ELSIF v_rule.kind = 'velocity' THEN
            SELECT count(*) INTO v_recent
              FROM ledger_ledgeraccount a
             CROSS JOIN LATERAL (
                   SELECT p.transfer_id FROM ledger_posting p
                    WHERE p.account_id = a.id
                      AND p.created_at >= v_now - make_interval(mins => v_rule.window_minutes)
                      AND p.amount_minor < 0) p
              JOIN ledger_transfer t ON t.id = p.transfer_id AND t.kind = 'transfer'
             WHERE a.owner_id = p_initiated_by AND (v_rule.currency = '' OR a.currency = v_rule.currency);
            v_hit := v_recent >= v_rule.max_count;  -- this transfer would be one more than allowed
        ELSE
            CONTINUE;
        END IF;
        CONTINUE WHEN NOT v_hit;
        IF v_rule.action = 'flag' THEN
            v_reasons := v_reasons || to_jsonb(v_rule.name::text);
        ELSIF v_rule.kind = 'velocity' THEN
            r_refusal := 'velocity_exceeded';
            r_refusal_data := jsonb_build_object(
                'max_count', v_rule.max_count, 'window_minutes', v_rule.window_minutes);
            RETURN;
        ELSE
            r_refusal := 'transfer_refused_by_rule';
            RETURN;
        END IF;
    END LOOP;

    -- 3. Both accounts, one statement, by primary key; everything re-checked under the lock.
    FOR v_row IN
        SELECT * FROM ledger_ledgeraccount WHERE id IN (v_from_id, v_to_id) ORDER BY id FOR UPDATE
    LOOP
        IF v_row.id = v_from_id THEN
            v_from := v_row;
        ELSE
            v_to := v_row;
        END IF;
        v_locked := v_locked + 1;
    END LOOP;
    IF v_locked <> 2 OR v_from.owner_id IS DISTINCT FROM p_initiated_by THEN
        r_refusal := 'account_not_found';
        RETURN;
    END IF;
    IF v_from.currency <> p_currency OR v_to.currency <> p_currency THEN
        r_refusal := 'currency_mismatch';
        RETURN;
    END IF;
    IF v_from.status <> 'active' OR v_to.status <> 'active' THEN
        r_refusal := 'account_not_active';
        RETURN;
    END IF;
    IF v_from.kind <> 'platform'
       AND v_from.posted_minor - v_from.held_minor - p_amount_minor < -v_from.credit_limit_minor THEN
        r_refusal := 'insufficient_funds';
        RETURN;
    END IF;

    -- 4. Writes: nothing above wrote anything, so a refusal left no trace.
    INSERT INTO ledger_transfer (public_id, kind, currency, amount_minor, reference, initiated_by_id, client_id,
                                 reverses_id, reversed_minor, hold_id, flagged_for_review, review_reasons)
    VALUES (p_transfer_public_id, 'transfer', p_currency, p_amount_minor, p_reference, p_initiated_by, p_client_id,
            NULL, 0, NULL, jsonb_array_length(v_reasons) > 0, v_reasons)
    RETURNING id, created_at INTO r_transfer_id, r_created_at;

    IF v_from.id < v_to.id THEN
        v_first := v_from; v_first_delta := -p_amount_minor;
        v_second := v_to; v_second_delta := p_amount_minor;
    ELSE
        v_first := v_to; v_first_delta := p_amount_minor;
        v_second := v_from; v_second_delta := -p_amount_minor;
    END IF;

    UPDATE ledger_ledgeraccount
       SET posted_minor = posted_minor + v_first_delta, held_minor = held_minor + 0, version = version + 1
     WHERE id = v_first.id
    RETURNING posted_minor, held_minor, version INTO v_posted, v_held, v_version;
    IF (v_posted, v_held, v_version)
       IS DISTINCT FROM (v_first.posted_minor + v_first_delta, v_first.held_minor, v_first.version + 1) THEN
        RAISE EXCEPTION 'ledger account %: balance after update (%, %, %) is not what its lock predicts',
            v_first.id, v_posted, v_held, v_version USING ERRCODE = 'LG001';
    END IF;
    v_first_posted := v_posted;
    v_first_version := v_version;

    UPDATE ledger_ledgeraccount
       SET posted_minor = posted_minor + v_second_delta, held_minor = held_minor + 0, version = version + 1
     WHERE id = v_second.id
    RETURNING posted_minor, held_minor, version INTO v_posted, v_held, v_version;
    IF (v_posted, v_held, v_version)
       IS DISTINCT FROM (v_second.posted_minor + v_second_delta, v_second.held_minor, v_second.version + 1) THEN
        RAISE EXCEPTION 'ledger account %: balance after update (%, %, %) is not what its lock predicts',
            v_second.id, v_posted, v_held, v_version USING ERRCODE = 'LG001';
    END IF;
    v_second_posted := v_posted;
    v_second_version := v_version;

    INSERT INTO ledger_posting (transfer_id, account_id, amount_minor, currency, balance_after_minor, account_version)
    VALUES (r_transfer_id, v_first.id, v_first_delta, p_currency, v_first_posted, v_first_version),
           (r_transfer_id, v_second.id, v_second_delta, p_currency, v_second_posted, v_second_version);

    -- The trail: what `ledger.services.core.transfer_payload` describes, postings in account id order.
    INSERT INTO audit_auditevent (event_type, outcome, actor_user, actor_client, actor_staff, object_type,
                                  object_id, purpose, request_id, source_ip, user_agent, payload)
    VALUES ('ledger.transfer.posted', 'success', p_actor_user, p_actor_client, p_actor_staff, 'ledger.transfer',
            p_transfer_public_id::text, '', p_request_id, NULL, '',
            jsonb_build_object(
                'transfer', p_transfer_public_id::text,
                'kind', 'transfer',
                'amount_minor', p_amount_minor,
                'currency', p_currency,
                'reference', p_audit_reference,
                'postings', jsonb_build_array(
                    jsonb_build_object('account', v_first.public_id::text, 'amount_minor', v_first_delta),
                    jsonb_build_object('account', v_second.public_id::text, 'amount_minor', v_second_delta)),
                'flagged_for_review', jsonb_array_length(v_reasons) > 0,
                'review_reasons', v_reasons));

    -- The outbox (`ledger.outbox.services`): one email per customer concerned, by user id, then the webhook.
    v_payload := jsonb_build_object(
        'transfer', p_transfer_public_id::text,
        'kind', 'transfer',
        'amount', p_amount_text,
        'amount_minor', p_amount_minor::text,
        'currency', p_currency);
    IF v_from.owner_id IS NOT NULL AND v_from.owner_id = v_to.owner_id THEN
        INSERT INTO ledger_outboxmessage (public_id, topic, channel, recipient_user_id, recipient_client_id, payload,
                                          status, attempts, last_error)
        VALUES (gen_random_uuid(), 'transfer.posted', 'email', v_from.owner_id, '',
                v_payload || '{"direction": "internal"}', 'pending', 0, '')
        RETURNING id INTO v_outbox_id;
        v_outbox_ids := v_outbox_ids || v_outbox_id;
    ELSE
        FOR v_rule IN
            SELECT owner_id, direction FROM (
                VALUES (v_from.owner_id, 'debit'), (v_to.owner_id, 'credit')) AS sides (owner_id, direction)
             WHERE owner_id IS NOT NULL ORDER BY owner_id
        LOOP
            INSERT INTO ledger_outboxmessage (public_id, topic, channel, recipient_user_id, recipient_client_id,
                                              payload, status, attempts, last_error)
            VALUES (gen_random_uuid(), 'transfer.posted', 'email', v_rule.owner_id, '',
                    v_payload || jsonb_build_object('direction', v_rule.direction), 'pending', 0, '')
            RETURNING id INTO v_outbox_id;
            v_outbox_ids := v_outbox_ids || v_outbox_id;
        END LOOP;
    END IF;
    IF p_client_id <> '' AND EXISTS (
        SELECT 1 FROM accounts_oauthclientpolicy policy
          JOIN oauth2_provider_application application ON application.id = policy.application_id
         WHERE application.client_id = p_client_id AND policy.webhook_url <> '') THEN
        INSERT INTO ledger_outboxmessage (public_id, topic, channel, recipient_user_id, recipient_client_id, payload,
                                          status, attempts, last_error)
        VALUES (gen_random_uuid(), 'transfer.posted', 'webhook', NULL, p_client_id, v_payload, 'pending', 0, '')
        RETURNING id INTO v_outbox_id;
        v_outbox_ids := v_outbox_ids || v_outbox_id;
    END IF;

    r_review_reasons := v_reasons;
    r_from := jsonb_build_object(
        'id', v_from.id, 'public_id', v_from.public_id, 'owner_id', v_from.owner_id, 'kind', v_from.kind,
        'status', v_from.status, 'currency', v_from.currency, 'credit_limit_minor', v_from.credit_limit_minor,
        'posted_minor', v_from.posted_minor - p_amount_minor, 'held_minor', v_from.held_minor,
        'version', v_from.version + 1);
    r_to := jsonb_build_object(
        'id', v_to.id, 'public_id', v_to.public_id, 'owner_id', v_to.owner_id, 'kind', v_to.kind,
        'status', v_to.status, 'currency', v_to.currency, 'credit_limit_minor', v_to.credit_limit_minor,
        'posted_minor', v_to.posted_minor + p_amount_minor, 'held_minor', v_to.held_minor,
        'version', v_to.version + 1);
    r_outbox_ids := v_outbox_ids;
END
$$;
"""

BACKWARDS = """
DROP FUNCTION IF EXISTS ledger_transfer_create(
    bigint, bigint, bigint, uuid, uuid, bigint, bigint, text, text, text, timestamptz, uuid, text,
    text, text, text, text, text);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0004_outboxmessage"),
        ("audit", "0002_write_once"),
    ]

    operations = [migrations.RunSQL(FUNCTION, BACKWARDS)]
