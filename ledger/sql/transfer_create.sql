-- A customer transfer as one call: lookups, locks, the policy step, the movement, its audit event and
-- its outbox rows. ledger/services/transfers.py is its only caller; ADR 0009 and 0014 say why.
--
-- 1. the accounts as named (by public id, scoped like the selectors: the initiator's own customer account,
--    any active customer account as destination), unlocked, with the refusals that need no lock;
-- 2. both accounts locked in one SELECT ... ORDER BY id FOR UPDATE; ownership, currency, status re-checked;
-- 3. the policy step (ledger_policy_check, policy.sql): profiles, limits, spend counter lock, rules;
-- 4. funds; then the writes: counters, and either the transfer (balances, postings, audit, outbox, and a
--    review case when a `flag` rule hit) or, when a `hold_for_review` rule hit, a review hold (held money,
--    a review case, an audit event) and nothing posted.
--
-- Refusals are RETURNED before the first write (r_refusal = the stable code, r_refusal_data = the numbers
-- its message needs), so the caller's transaction stays usable and the HTTP layer stores the refusal as
-- the idempotent answer without a savepoint. A broken money invariant RAISEs SQLSTATE LG001; a call without
-- the application's authorization MACs (ledger/authorization.py: the transfer's, and the review hold's it
-- becomes if a rule holds it) is refused with LG002 before anything.

CREATE OR REPLACE FUNCTION ledger_transfer_create(
    p_from_public_id uuid,
    p_to_public_id uuid,
    p_initiated_by bigint,
    p_amount_minor bigint,
    p_currency text,
    p_reference text,
    p_client_id text,
    p_now timestamptz,
    p_time_zone text,
    p_transfer_public_id uuid,
    p_amount_text text,
    p_actor_user text,
    p_actor_client text,
    p_actor_staff text,
    p_request_id text,
    p_audit_reference text,
    p_authorization_mac text,
    p_hold_public_id uuid,
    p_hold_authorization_mac text,
    OUT r_refusal text,
    OUT r_refusal_data jsonb,
    OUT r_status text,
    OUT r_transfer_id bigint,
    OUT r_created_at timestamptz,
    OUT r_review_reasons jsonb,
    OUT r_from jsonb,
    OUT r_to jsonb,
    OUT r_outbox_ids bigint[]
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_from ledger_ledgeraccount%ROWTYPE;
    v_to ledger_ledgeraccount%ROWTYPE;
    v_row ledger_ledgeraccount%ROWTYPE;
    v_locked int := 0;
    v_policy record;
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
    v_hold_id bigint;
    v_outbox_ids bigint[] := '{}';
    v_initiator text := (SELECT u.public_id::text FROM accounts_user u WHERE u.id = p_initiated_by);
BEGIN
    IF coalesce(p_authorization_mac, '') !~ '^[0-9a-f]{64}$' OR p_hold_public_id IS NULL
       OR coalesce(p_hold_authorization_mac, '') !~ '^[0-9a-f]{64}$' THEN
        PERFORM ledger_refuse('a movement carries the authorization MAC of the application that decided it');
    END IF;
    -- 1. The accounts as named, unlocked: the refusals that need no lock.
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

    -- 2. Both accounts, one statement, by primary key; everything re-checked under the lock.
    FOR v_row IN
        SELECT * FROM ledger_ledgeraccount WHERE id IN (v_from.id, v_to.id) ORDER BY id FOR UPDATE
    LOOP
        IF v_row.id = v_from.id THEN
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

    -- 3. The policy step: the same checks, codes and counters as every other outgoing movement.
    SELECT * INTO v_policy FROM ledger_policy_check(
        'transfer', p_initiated_by, v_to.owner_id, p_currency, p_amount_minor, p_now, p_time_zone);
    IF v_policy.r_refusal IS NOT NULL THEN
        r_refusal := v_policy.r_refusal;
        r_refusal_data := v_policy.r_refusal_data;
        RETURN;
    END IF;

    -- 4. Funds, then the writes: nothing above wrote anything a refusal would leave behind.
    IF v_from.posted_minor - v_from.held_minor - p_amount_minor < -v_from.credit_limit_minor THEN
        r_refusal := 'insufficient_funds';
        RETURN;
    END IF;
    PERFORM ledger_policy_count(p_initiated_by, p_currency, p_amount_minor, v_policy.r_limit_day, p_now);
    r_review_reasons := v_policy.r_reasons;

    IF v_policy.r_action = 'hold_for_review' THEN
        -- Held, not posted: the money is reserved on the sender's account until an officer decides.
        UPDATE ledger_ledgeraccount SET held_minor = held_minor + p_amount_minor, version = version + 1
         WHERE id = v_from.id
        RETURNING posted_minor, held_minor, version INTO v_posted, v_held, v_version;
        IF (v_posted, v_held, v_version)
           IS DISTINCT FROM (v_from.posted_minor, v_from.held_minor + p_amount_minor, v_from.version + 1) THEN
            RAISE EXCEPTION 'ledger account %: balance after update (%, %, %) is not what its lock predicts',
                v_from.id, v_posted, v_held, v_version USING ERRCODE = 'LG001';
        END IF;
        INSERT INTO ledger_hold (public_id, account_id, destination_id, currency, amount_minor, captured_minor,
                                 status, purpose, expires_at, reference, created_by_id, client_id, limit_day,
                                 movement_kind, transfer_public_id, authorization_mac, review_required)
        VALUES (p_hold_public_id, v_from.id, v_to.id, p_currency, p_amount_minor, 0, 'active', 'review', NULL,
                p_reference, p_initiated_by, p_client_id, v_policy.r_limit_day, 'transfer', p_transfer_public_id,
                p_hold_authorization_mac, true)
        RETURNING id, created_at INTO v_hold_id, r_created_at;
        INSERT INTO ledger_reviewcase (public_id, kind, status, transfer_id, hold_id, subject_id, reasons,
                                       amount_minor, currency, decision_reason)
        VALUES (gen_random_uuid(), 'held_movement', 'open', NULL, v_hold_id, p_initiated_by, v_policy.r_reasons,
                p_amount_minor, p_currency, '');
        INSERT INTO audit_auditevent (event_type, outcome, actor_user, actor_client, actor_staff, object_type,
                                      object_id, purpose, request_id, source_ip, user_agent, payload)
        VALUES ('ledger.transfer.held_for_review', 'success', p_actor_user, p_actor_client, p_actor_staff,
                'ledger.transfer', p_transfer_public_id::text, '', p_request_id, NULL, '',
                jsonb_build_object(
                    'transfer', p_transfer_public_id::text,
                    'kind', 'transfer',
                    'amount_minor', p_amount_minor,
                    'currency', p_currency,
                    'reference', p_audit_reference,
                    'account', v_from.public_id::text,
                    'destination', v_to.public_id::text,
                    'review_reasons', v_policy.r_reasons,
                    'initiated_by', v_initiator));
        r_status := 'pending';
        r_from := jsonb_build_object('id', v_from.id, 'public_id', v_from.public_id);
        r_to := jsonb_build_object('id', v_to.id, 'public_id', v_to.public_id);
        r_outbox_ids := v_outbox_ids;
        RETURN;
    END IF;

    INSERT INTO ledger_transfer (public_id, kind, currency, amount_minor, reference, initiated_by_id, client_id,
                                 reverses_id, reversed_minor, hold_id, flagged_for_review, review_reasons, limit_day,
                                 authorization_mac)
    VALUES (p_transfer_public_id, 'transfer', p_currency, p_amount_minor, p_reference, p_initiated_by, p_client_id,
            NULL, 0, NULL, v_policy.r_action = 'flag', v_policy.r_reasons, v_policy.r_limit_day, p_authorization_mac)
    RETURNING id, created_at INTO r_transfer_id, r_created_at;
    IF v_policy.r_action = 'flag' THEN
        INSERT INTO ledger_reviewcase (public_id, kind, status, transfer_id, hold_id, subject_id, reasons,
                                       amount_minor, currency, decision_reason)
        VALUES (gen_random_uuid(), 'flagged_movement', 'open', r_transfer_id, NULL, p_initiated_by,
                v_policy.r_reasons, p_amount_minor, p_currency, '');
    END IF;
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

    -- The trail: the shape ledger_movement_post writes (movements.sql), postings in account id order.
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
                'flagged_for_review', v_policy.r_action = 'flag',
                'review_reasons', v_policy.r_reasons,
                'initiated_by', v_initiator));

    -- The notifications (movements.sql, the same rows every movement writes): an email per customer concerned,
    -- then the partner's webhook.
    v_outbox_ids := ledger_outbox_transfer_posted(p_transfer_public_id, 'transfer', p_amount_minor, p_currency,
                                                  p_amount_text, p_client_id, v_from.owner_id, v_to.owner_id);

    r_status := 'posted';
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
