-- The only doors to the money tables (issue 12, ADR 0016). The runtime role may not INSERT, UPDATE or
-- DELETE ledger accounts, transfers, postings or holds; it may EXECUTE these functions, which run as the
-- ledger's definer role (NOLOGIN, fintech/db_privileges.py) and do each whole write unit with its checks
-- and its audit event, so no money moves, no hold changes and no account opens without its record in
-- the trail, and the record says what the rows say (the money fields are built here, from the rows).
--
-- The services (ledger/services/) check first and raise the customer-facing errors; these checks are the
-- database's own: what the web role's login cannot get around. A breach RAISEs SQLSTATE LG002 (refused:
-- a caller bypassing the services) or LG001 (a money invariant broke under a lock).
--
-- Helpers (ledger_audit_append, ledger_balance_move, ...) run as their caller: only the entry points are
-- SECURITY DEFINER, and only they are granted to the runtime role.
--
-- p_event (every function): {"event_type", "actor_user", "actor_client", "actor_staff", "request_id",
-- "source_ip", "user_agent", "payload"}: `audit.services.events.audit_event_row`, masked there. The
-- payload's money fields are overwritten by the ones built here.

CREATE OR REPLACE FUNCTION ledger_audit_append(p_event jsonb, p_object_type text, p_object_id text, p_payload jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF coalesce(p_event->>'event_type', '') NOT LIKE 'ledger.%' THEN
        RAISE EXCEPTION 'ledger functions record ledger.* events only, not %', p_event->>'event_type'
            USING ERRCODE = 'LG002';
    END IF;
    INSERT INTO audit_auditevent (event_type, outcome, actor_user, actor_client, actor_staff, object_type,
                                  object_id, purpose, request_id, source_ip, user_agent, payload)
    VALUES (p_event->>'event_type', 'success', coalesce(p_event->>'actor_user', ''),
            coalesce(p_event->>'actor_client', ''), coalesce(p_event->>'actor_staff', ''), p_object_type,
            p_object_id, '', coalesce(p_event->>'request_id', ''), (p_event->>'source_ip')::inet,
            coalesce(p_event->>'user_agent', ''), p_payload);
END
$$;

CREATE OR REPLACE FUNCTION ledger_refuse(p_message text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'refused by the ledger: %', p_message USING ERRCODE = 'LG002';
END
$$;

-- One balance change on a locked account, checked against what the lock predicts; returns the row after.
CREATE OR REPLACE FUNCTION ledger_balance_move(p_account ledger_ledgeraccount, p_posted bigint, p_held bigint)
RETURNS ledger_ledgeraccount
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_after ledger_ledgeraccount%ROWTYPE;
BEGIN
    IF p_account.held_minor + p_held < 0 THEN
        RAISE EXCEPTION 'ledger account %: held would become negative', p_account.id USING ERRCODE = 'LG001';
    END IF;
    UPDATE ledger_ledgeraccount
       SET posted_minor = posted_minor + p_posted, held_minor = held_minor + p_held, version = version + 1
     WHERE id = p_account.id
    RETURNING * INTO v_after;
    IF (v_after.posted_minor, v_after.held_minor, v_after.version) IS DISTINCT FROM
       (p_account.posted_minor + p_posted, p_account.held_minor + p_held, p_account.version + 1) THEN
        RAISE EXCEPTION 'ledger account %: balance after update is not what its lock predicts', p_account.id
            USING ERRCODE = 'LG001';
    END IF;
    RETURN v_after;
END
$$;

-- Funds: a change that lowers a customer account's available balance may not take it below its credit limit.
CREATE OR REPLACE FUNCTION ledger_funds_ok(p_account ledger_ledgeraccount, p_posted bigint, p_held bigint)
RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p_account.kind = 'platform' OR p_posted - p_held >= 0
        OR p_account.posted_minor - p_account.held_minor + p_posted - p_held >= -p_account.credit_limit_minor
$$;

CREATE OR REPLACE FUNCTION ledger_accounts_lock(p_ids bigint[]) RETURNS SETOF ledger_ledgeraccount
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT * FROM ledger_ledgeraccount WHERE id = ANY (p_ids) ORDER BY id FOR UPDATE
$$;

CREATE OR REPLACE FUNCTION ledger_holds_lock(p_ids bigint[]) RETURNS SETOF ledger_hold
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT * FROM ledger_hold WHERE id = ANY (p_ids) ORDER BY id FOR UPDATE
$$;

CREATE OR REPLACE FUNCTION ledger_transfers_lock(p_ids bigint[]) RETURNS SETOF ledger_transfer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT * FROM ledger_transfer WHERE id = ANY (p_ids) ORDER BY id FOR UPDATE
$$;

-- A movement of posted money: two legs (debit, credit), of a kind whose shape is checked here.
-- p_movement: {"kind", "public_id" (optional), "currency", "amount_minor", "reference", "initiated_by_id",
-- "client_id", "reverses_id", "hold_id", "flagged_for_review", "review_reasons", "limit_day",
-- "debit_account_id", "credit_account_id"}; p_event also says "object_type" ('ledger.transfer', or
-- 'ledger.hold' for a capture, whose payload nests the movement under "transfer").
-- Returns {"id", "public_id", "created_at", "accounts": {id: {"posted_minor", "held_minor", "version"}}}.
CREATE OR REPLACE FUNCTION ledger_movement_post(p_movement jsonb, p_event jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_kind text := p_movement->>'kind';
    v_currency text := p_movement->>'currency';
    v_amount bigint := (p_movement->>'amount_minor')::bigint;
    v_initiated_by bigint := (p_movement->>'initiated_by_id')::bigint;
    v_client_id text := coalesce(p_movement->>'client_id', '');
    v_hold_id bigint := (p_movement->>'hold_id')::bigint;
    v_reverses_id bigint := (p_movement->>'reverses_id')::bigint;
    v_public_id uuid := coalesce((p_movement->>'public_id')::uuid, gen_random_uuid());
    v_debit ledger_ledgeraccount%ROWTYPE;
    v_credit ledger_ledgeraccount%ROWTYPE;
    v_row ledger_ledgeraccount%ROWTYPE;
    v_hold ledger_hold%ROWTYPE;
    v_original ledger_transfer%ROWTYPE;
    v_debit_held bigint := 0;
    v_locked int := 0;
    v_transfer_id bigint;
    v_created_at timestamptz;
    v_movement jsonb;
    v_accounts jsonb := '{}';
    v_policy record;
BEGIN
    IF v_kind IS NULL OR v_kind NOT IN ('transfer', 'deposit', 'hold_capture', 'reversal', 'credit_charge') THEN
        PERFORM ledger_refuse('unknown movement kind ' || coalesce(v_kind, 'NULL'));
    END IF;
    IF v_amount IS NULL OR v_amount <= 0 THEN
        PERFORM ledger_refuse('a movement moves a positive amount');
    END IF;
    IF coalesce(p_movement->>'authorization_mac', '') !~ '^[0-9a-f]{64}$' THEN
        PERFORM ledger_refuse('a movement carries the authorization MAC of the application that decided it');
    END IF;
    FOR v_row IN
        SELECT * FROM ledger_ledgeraccount
         WHERE id IN ((p_movement->>'debit_account_id')::bigint, (p_movement->>'credit_account_id')::bigint)
         ORDER BY id FOR UPDATE
    LOOP
        IF v_row.id = (p_movement->>'debit_account_id')::bigint THEN v_debit := v_row; ELSE v_credit := v_row; END IF;
        v_locked := v_locked + 1;
    END LOOP;
    IF v_locked <> 2 THEN
        PERFORM ledger_refuse('a movement has two distinct, existing accounts');
    END IF;
    IF v_debit.currency <> v_currency OR v_credit.currency <> v_currency THEN
        PERFORM ledger_refuse('currency mismatch');
    END IF;

    -- The shape of each kind: which accounts it may touch, and what it must refer to.
    IF v_kind = 'deposit' THEN
        IF NOT (v_debit.kind = 'platform' AND v_debit.purpose = 'funding' AND v_credit.kind <> 'platform')
           OR v_hold_id IS NOT NULL OR v_reverses_id IS NOT NULL THEN
            PERFORM ledger_refuse('a deposit credits a customer account from the funding account');
        END IF;
    ELSIF v_kind IN ('transfer', 'credit_charge', 'hold_capture') THEN
        -- Customer transfers are ledger_transfer_create's; here only as a review hold's approved posting.
        IF (v_hold_id IS NULL AND v_kind <> 'credit_charge') OR v_reverses_id IS NOT NULL THEN
            PERFORM ledger_refuse(v_kind || ' is posted from its hold here');
        END IF;
    ELSIF v_kind = 'reversal' AND (v_reverses_id IS NULL OR v_hold_id IS NOT NULL) THEN
        PERFORM ledger_refuse('a reversal names the transfer it reverses');
    END IF;
    IF v_kind = 'credit_charge' AND NOT (v_debit.kind = 'credit_line' AND v_credit.kind = 'platform'
                                        AND v_credit.purpose = 'settlement') THEN
        PERFORM ledger_refuse('a credit charge moves a credit line to the settlement account');
    END IF;
    IF v_kind IN ('transfer', 'hold_capture') AND (v_debit.kind = 'platform' OR v_credit.kind = 'platform') THEN
        PERFORM ledger_refuse(v_kind || ' is between customer accounts');
    END IF;

    IF v_hold_id IS NOT NULL THEN
        SELECT * INTO v_hold FROM ledger_hold WHERE id = v_hold_id FOR UPDATE;
        IF NOT FOUND OR v_hold.status <> 'active' OR v_hold.account_id <> v_debit.id
           OR v_hold.destination_id <> v_credit.id OR v_hold.currency <> v_currency
           OR v_amount > v_hold.amount_minor - v_hold.captured_minor THEN
            PERFORM ledger_refuse('the movement is not within its active hold');
        END IF;
        IF v_hold.purpose = 'authorisation' THEN
            IF v_kind <> 'hold_capture' OR v_hold.expires_at <= clock_timestamp()
               OR v_initiated_by IS DISTINCT FROM v_credit.owner_id
               OR EXISTS (SELECT 1 FROM ledger_reviewcase c WHERE c.hold_id = v_hold.id
                             AND c.kind = 'held_movement' AND c.status <> 'approved') THEN
                PERFORM ledger_refuse('a hold is captured by its payee, before expiry, once any review approved it');
            END IF;
        ELSIF v_kind <> v_hold.movement_kind OR v_amount <> v_hold.amount_minor OR v_hold.captured_minor <> 0
              OR v_public_id <> v_hold.transfer_public_id OR v_initiated_by IS DISTINCT FROM v_hold.created_by_id
              OR v_client_id <> v_hold.client_id
              OR NOT EXISTS (SELECT 1 FROM ledger_reviewcase c WHERE c.hold_id = v_hold.id
                                AND c.kind = 'held_movement' AND c.status = 'approved') THEN
            PERFORM ledger_refuse('a review hold is posted whole, as the movement it held, once its case is approved');
        END IF;
        v_debit_held := -v_amount;
    END IF;

    IF v_kind = 'reversal' THEN
        SELECT * INTO v_original FROM ledger_transfer WHERE id = v_reverses_id FOR UPDATE;
        IF NOT FOUND OR v_original.kind = 'reversal' OR v_original.currency <> v_currency
           OR v_amount > v_original.amount_minor - v_original.reversed_minor
           OR NOT EXISTS (SELECT 1 FROM ledger_posting p WHERE p.transfer_id = v_original.id
                            AND p.account_id = v_credit.id AND p.amount_minor = -v_original.amount_minor)
           OR NOT EXISTS (SELECT 1 FROM ledger_posting p WHERE p.transfer_id = v_original.id
                            AND p.account_id = v_debit.id AND p.amount_minor = v_original.amount_minor) THEN
            PERFORM ledger_refuse('a reversal mirrors what remains of its original');
        END IF;
        -- A customer refunds only a payment received from another customer, from the account that received it.
        IF v_initiated_by IS NOT NULL AND (v_original.kind NOT IN ('transfer', 'hold_capture')
                                           OR v_debit.owner_id IS DISTINCT FROM v_initiated_by) THEN
            PERFORM ledger_refuse('a customer refunds a payment they received, nothing else');
        END IF;
        IF v_debit.status = 'closed' OR v_credit.status = 'closed' THEN
            PERFORM ledger_refuse('account not active');
        END IF;
    ELSIF v_debit.status <> 'active' OR v_credit.status <> 'active' THEN
        PERFORM ledger_refuse('account not active');
    END IF;
    IF NOT ledger_funds_ok(v_debit, -v_amount, v_debit_held) THEN
        PERFORM ledger_refuse('insufficient funds');
    END IF;

    -- The policy step, as the database runs it, for what a customer's money does (deposits are the platform's).
    IF v_kind IN ('credit_charge', 'reversal') AND v_hold_id IS NULL THEN
        SELECT * INTO v_policy FROM ledger_policy_check(
            CASE WHEN v_kind = 'reversal' THEN 'refund' ELSE 'credit_charge' END, v_debit.owner_id,
            v_credit.owner_id, v_currency, v_amount, clock_timestamp(), coalesce(p_movement->>'time_zone', 'UTC'));
        IF v_policy.r_refusal IS NOT NULL
           OR v_policy.r_limit_day IS DISTINCT FROM (p_movement->>'limit_day')::date
           OR coalesce(p_movement->'review_reasons', '[]') <> coalesce(v_policy.r_reasons, '[]')
           OR coalesce((p_movement->>'flagged_for_review')::boolean, false)
              <> (jsonb_array_length(coalesce(v_policy.r_reasons, '[]')) > 0)
           OR (v_kind = 'credit_charge' AND v_policy.r_action = 'hold_for_review') THEN
            PERFORM ledger_refuse('the movement is not what the policy step decides for it');
        END IF;
    ELSIF v_hold_id IS NOT NULL THEN  -- a capture, or a review hold posted: a block still stops it
        SELECT * INTO v_policy FROM ledger_policy_check(
            'capture', v_debit.owner_id, v_credit.owner_id, v_currency, v_amount, clock_timestamp(),
            coalesce(p_movement->>'time_zone', 'UTC'));
        IF v_policy.r_refusal IS NOT NULL THEN
            PERFORM ledger_refuse('the policy step refuses this capture');
        END IF;
    END IF;

    INSERT INTO ledger_transfer (public_id, kind, currency, amount_minor, reference, initiated_by_id, client_id,
                                 reverses_id, reversed_minor, hold_id, flagged_for_review, review_reasons, limit_day,
                                 authorization_mac)
    VALUES (v_public_id, v_kind, v_currency, v_amount, coalesce(p_movement->>'reference', ''), v_initiated_by,
            v_client_id, v_reverses_id, 0, v_hold_id, coalesce((p_movement->>'flagged_for_review')::boolean, false),
            coalesce(p_movement->'review_reasons', '[]'), (p_movement->>'limit_day')::date,
            p_movement->>'authorization_mac')
    RETURNING id, created_at INTO v_transfer_id, v_created_at;

    -- Balances and postings in account id order, as every other writer does.
    IF v_debit.id < v_credit.id THEN
        v_debit := ledger_balance_move(v_debit, -v_amount, v_debit_held);
        v_credit := ledger_balance_move(v_credit, v_amount, 0);
    ELSE
        v_credit := ledger_balance_move(v_credit, v_amount, 0);
        v_debit := ledger_balance_move(v_debit, -v_amount, v_debit_held);
    END IF;
    INSERT INTO ledger_posting (transfer_id, account_id, amount_minor, currency, balance_after_minor, account_version)
    SELECT v_transfer_id, side.id, side.amount_minor, v_currency, side.posted_minor, side.version
      FROM (VALUES (v_debit.id, -v_amount, v_debit.posted_minor, v_debit.version),
                   (v_credit.id, v_amount, v_credit.posted_minor, v_credit.version))
           AS side (id, amount_minor, posted_minor, version)
     ORDER BY side.id;
    v_accounts := jsonb_build_object(
        v_debit.id::text, jsonb_build_object('posted_minor', v_debit.posted_minor, 'held_minor', v_debit.held_minor,
                                             'version', v_debit.version),
        v_credit.id::text, jsonb_build_object('posted_minor', v_credit.posted_minor,
                                              'held_minor', v_credit.held_minor, 'version', v_credit.version));

    IF v_hold_id IS NOT NULL THEN
        UPDATE ledger_hold
           SET captured_minor = captured_minor + v_amount,
               status = CASE WHEN captured_minor + v_amount = amount_minor THEN 'captured' ELSE 'active' END
         WHERE id = v_hold_id;
    END IF;
    IF v_kind = 'reversal' THEN
        UPDATE ledger_transfer SET reversed_minor = reversed_minor + v_amount WHERE id = v_reverses_id;
    END IF;

    -- The trail: what ledger_verify compares each transfer with (`transfer_not_in_audit_trail`), postings in
    -- account id order, the initiator by public id; ledger_transfer_create writes the same shape.
    v_movement := jsonb_build_object(
        'transfer', v_public_id::text,
        'kind', v_kind,
        'amount_minor', v_amount,
        'currency', v_currency,
        'reference', coalesce(p_movement->>'reference', ''),
        'postings', (SELECT jsonb_agg(jsonb_build_object('account', a.public_id::text, 'amount_minor', p.amount_minor)
                                      ORDER BY p.account_id)
                       FROM ledger_posting p JOIN ledger_ledgeraccount a ON a.id = p.account_id
                      WHERE p.transfer_id = v_transfer_id),
        'flagged_for_review', coalesce((p_movement->>'flagged_for_review')::boolean, false),
        'review_reasons', coalesce(p_movement->'review_reasons', '[]'),
        'initiated_by', (SELECT u.public_id::text FROM accounts_user u WHERE u.id = v_initiated_by));
    IF p_event->>'object_type' = 'ledger.hold' THEN
        IF v_hold_id IS NULL THEN
            PERFORM ledger_refuse('a hold event needs a hold');
        END IF;
        PERFORM ledger_audit_append(p_event, 'ledger.hold', v_hold.public_id::text,
                                    coalesce(p_event->'payload', '{}') || jsonb_build_object('transfer', v_movement));
    ELSE
        PERFORM ledger_audit_append(p_event, 'ledger.transfer', v_public_id::text,
                                    coalesce(p_event->'payload', '{}') || v_movement);
    END IF;
    RETURN jsonb_build_object('id', v_transfer_id, 'public_id', v_public_id, 'created_at', v_created_at,
                              'accounts', v_accounts,
                              'outbox_ids', ledger_outbox_transfer_posted(v_public_id, v_kind, v_amount, v_currency,
                                                                          p_movement->>'amount_text', v_client_id,
                                                                          v_debit.owner_id, v_credit.owner_id));
END
$$;

-- Reserve money: an authorisation (the payer's, for a payee, until it expires) or a review hold (a movement
-- a rule held: its kind and the transfer id the customer was given). Destination and amount are fixed here.
-- p_hold: {"public_id", "account_id", "destination_id", "currency", "amount_minor", "purpose", "expires_at",
-- "reference", "created_by_id", "client_id", "limit_day", "movement_kind", "transfer_public_id",
-- "authorization_mac"} (ledger/authorization.py: the application's, checked before any capture).
CREATE OR REPLACE FUNCTION ledger_hold_open(p_hold jsonb, p_event jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_amount bigint := (p_hold->>'amount_minor')::bigint;
    v_purpose text := p_hold->>'purpose';
    v_created_by bigint := (p_hold->>'created_by_id')::bigint;
    v_account ledger_ledgeraccount%ROWTYPE;
    v_destination ledger_ledgeraccount%ROWTYPE;
    v_row ledger_ledgeraccount%ROWTYPE;
    v_locked int := 0;
    v_hold ledger_hold%ROWTYPE;
    v_policy record;
    v_case_id bigint;
BEGIN
    IF coalesce(p_hold->>'authorization_mac', '') !~ '^[0-9a-f]{64}$' OR p_hold->>'public_id' IS NULL THEN
        PERFORM ledger_refuse('a hold carries its public id and the authorization MAC of the application');
    END IF;
    FOR v_row IN
        SELECT * FROM ledger_ledgeraccount
         WHERE id IN ((p_hold->>'account_id')::bigint, (p_hold->>'destination_id')::bigint) ORDER BY id FOR UPDATE
    LOOP
        IF v_row.id = (p_hold->>'account_id')::bigint THEN v_account := v_row; ELSE v_destination := v_row; END IF;
        v_locked := v_locked + 1;
    END LOOP;
    IF v_locked <> 2 OR v_amount IS NULL OR v_amount <= 0 OR v_account.currency <> p_hold->>'currency'
       OR v_destination.currency <> p_hold->>'currency' OR v_account.status <> 'active'
       OR v_destination.status <> 'active' OR v_account.kind = 'platform' THEN
        PERFORM ledger_refuse('a hold reserves a positive amount between two active accounts of its currency');
    END IF;
    IF v_purpose = 'authorisation' THEN
        IF (p_hold->>'expires_at')::timestamptz IS NULL OR (p_hold->>'expires_at')::timestamptz <= clock_timestamp()
           OR v_created_by IS DISTINCT FROM v_account.owner_id OR v_destination.kind = 'platform'
           OR coalesce(p_hold->>'movement_kind', '') <> '' OR p_hold->>'transfer_public_id' IS NOT NULL THEN
            PERFORM ledger_refuse('an authorisation is the payer''s, to a customer, until a future expiry');
        END IF;
    ELSIF v_purpose = 'review' THEN
        IF p_hold->>'expires_at' IS NOT NULL OR p_hold->>'transfer_public_id' IS NULL
           OR v_created_by IS DISTINCT FROM v_account.owner_id
           OR NOT ((p_hold->>'movement_kind' = 'transfer' AND v_destination.kind <> 'platform')
                   OR (p_hold->>'movement_kind' = 'credit_charge' AND v_account.kind = 'credit_line'
                       AND v_destination.kind = 'platform' AND v_destination.purpose = 'settlement')) THEN
            PERFORM ledger_refuse('a review hold holds a customer''s transfer or credit charge');
        END IF;
    ELSE
        PERFORM ledger_refuse('unknown hold purpose');
    END IF;
    -- The policy step, as the database runs it: limits, blocks and rules hold for a hold opened by any caller.
    SELECT * INTO v_policy FROM ledger_policy_check(
        CASE WHEN v_purpose = 'authorisation' THEN 'hold' ELSE p_hold->>'movement_kind' END, v_account.owner_id,
        v_destination.owner_id, p_hold->>'currency', v_amount, clock_timestamp(),
        coalesce(p_hold->>'time_zone', 'UTC'));
    IF v_policy.r_refusal IS NOT NULL OR v_policy.r_limit_day IS DISTINCT FROM (p_hold->>'limit_day')::date
       OR (v_purpose = 'review' AND v_policy.r_action <> 'hold_for_review') THEN
        PERFORM ledger_refuse('the hold is not what the policy step decides for it');
    END IF;
    IF NOT ledger_funds_ok(v_account, 0, v_amount) THEN
        PERFORM ledger_refuse('insufficient funds');
    END IF;
    v_account := ledger_balance_move(v_account, 0, v_amount);
    INSERT INTO ledger_hold (public_id, account_id, destination_id, currency, amount_minor, captured_minor, status,
                             purpose, expires_at, reference, created_by_id, client_id, limit_day, movement_kind,
                             transfer_public_id, authorization_mac, review_required)
    VALUES ((p_hold->>'public_id')::uuid, v_account.id, v_destination.id, p_hold->>'currency', v_amount, 0, 'active',
            v_purpose, (p_hold->>'expires_at')::timestamptz, coalesce(p_hold->>'reference', ''), v_created_by,
            coalesce(p_hold->>'client_id', ''), (p_hold->>'limit_day')::date, coalesce(p_hold->>'movement_kind', ''),
            (p_hold->>'transfer_public_id')::uuid, p_hold->>'authorization_mac',
            v_purpose = 'review' OR v_policy.r_action = 'hold_for_review')
    RETURNING * INTO v_hold;
    IF v_policy.r_action IN ('flag', 'hold_for_review') THEN
        -- The case the rule calls for, in the same statement: a capture or a posting waits for its approval.
        INSERT INTO ledger_reviewcase (public_id, kind, status, transfer_id, hold_id, subject_id, reasons,
                                       amount_minor, currency, decision_reason)
        VALUES (gen_random_uuid(),
                CASE WHEN v_policy.r_action = 'hold_for_review' THEN 'held_movement' ELSE 'flagged_movement' END,
                'open', NULL, v_hold.id, v_account.owner_id, v_policy.r_reasons, v_amount, v_hold.currency, '')
        RETURNING id INTO v_case_id;
    END IF;
    IF v_purpose = 'authorisation' THEN
        PERFORM ledger_audit_append(p_event, 'ledger.hold', v_hold.public_id::text,
            coalesce(p_event->'payload', '{}') || jsonb_build_object(
                'hold', v_hold.public_id::text, 'account', v_account.public_id::text,
                'destination', v_destination.public_id::text, 'amount_minor', v_amount, 'captured_minor', 0,
                'currency', v_hold.currency, 'status', 'active'));
    ELSE
        PERFORM ledger_audit_append(p_event, 'ledger.transfer', v_hold.transfer_public_id::text,
            coalesce(p_event->'payload', '{}') || jsonb_build_object(
                'transfer', v_hold.transfer_public_id::text, 'kind', v_hold.movement_kind, 'amount_minor', v_amount,
                'currency', v_hold.currency, 'reference', v_hold.reference,
                'account', v_account.public_id::text, 'destination', v_destination.public_id::text,
                'initiated_by', (SELECT u.public_id::text FROM accounts_user u WHERE u.id = v_created_by)));
    END IF;
    RETURN jsonb_build_object('id', v_hold.id, 'public_id', v_hold.public_id, 'created_at', v_hold.created_at,
                              'posted_minor', v_account.posted_minor, 'held_minor', v_account.held_minor,
                              'version', v_account.version, 'review_case_id', v_case_id);
END
$$;

-- Give back what remains of an active hold: voided (payee, or a rejected review) or expired (past its time).
CREATE OR REPLACE FUNCTION ledger_hold_release(p_hold_id bigint, p_status text, p_event jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_hold ledger_hold%ROWTYPE;
    v_account ledger_ledgeraccount%ROWTYPE;
    v_destination_public_id uuid;
BEGIN
    SELECT * INTO v_account FROM ledger_ledgeraccount
     WHERE id = (SELECT account_id FROM ledger_hold WHERE id = p_hold_id) FOR UPDATE;
    SELECT * INTO v_hold FROM ledger_hold WHERE id = p_hold_id FOR UPDATE;
    IF NOT FOUND OR v_hold.status <> 'active' OR p_status NOT IN ('voided', 'expired')
       OR (p_status = 'expired' AND (v_hold.purpose <> 'authorisation' OR v_hold.expires_at > clock_timestamp())) THEN
        PERFORM ledger_refuse('only an active hold is released: voided, or expired once past its time');
    END IF;
    v_account := ledger_balance_move(v_account, 0, -(v_hold.amount_minor - v_hold.captured_minor));
    UPDATE ledger_hold SET status = p_status WHERE id = v_hold.id;
    SELECT public_id INTO v_destination_public_id FROM ledger_ledgeraccount WHERE id = v_hold.destination_id;
    PERFORM ledger_audit_append(p_event, 'ledger.hold', v_hold.public_id::text,
        coalesce(p_event->'payload', '{}') || jsonb_build_object(
            'hold', v_hold.public_id::text, 'account', v_account.public_id::text,
            'destination', v_destination_public_id::text, 'amount_minor', v_hold.amount_minor,
            'captured_minor', v_hold.captured_minor, 'currency', v_hold.currency, 'status', p_status));
    RETURN jsonb_build_object('posted_minor', v_account.posted_minor, 'held_minor', v_account.held_minor,
                              'version', v_account.version);
END
$$;

-- Open an account with a zero balance: a customer's (deposit or credit line) or the platform's (one per
-- purpose and currency; the unique index refuses a second).
CREATE OR REPLACE FUNCTION ledger_account_open(p_account jsonb, p_event jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_kind text := p_account->>'kind';
    v_limit bigint := coalesce((p_account->>'credit_limit_minor')::bigint, 0);
    v_row ledger_ledgeraccount%ROWTYPE;
    v_payload jsonb;
BEGIN
    IF v_kind = 'platform' THEN
        IF p_account->>'owner_id' IS NOT NULL OR v_limit <> 0
           OR coalesce(p_account->>'purpose', '') NOT IN ('funding', 'fees', 'settlement') THEN
            PERFORM ledger_refuse('a platform account has a purpose, no owner and no credit');
        END IF;
    ELSIF v_kind NOT IN ('deposit', 'credit_line') OR p_account->>'owner_id' IS NULL
          OR coalesce(p_account->>'purpose', '') <> '' OR v_limit < 0 OR (v_limit <> 0 AND v_kind <> 'credit_line') THEN
        PERFORM ledger_refuse('a customer holds a deposit account or a credit line; only a credit line has credit');
    END IF;
    INSERT INTO ledger_ledgeraccount (public_id, owner_id, kind, purpose, status, currency, credit_limit_minor,
                                      posted_minor, held_minor, version)
    VALUES (gen_random_uuid(), (p_account->>'owner_id')::bigint, v_kind, coalesce(p_account->>'purpose', ''),
            'active', p_account->>'currency', v_limit, 0, 0, 0)
    RETURNING * INTO v_row;
    v_payload := CASE WHEN v_kind = 'platform'
        THEN jsonb_build_object('kind', v_kind, 'purpose', v_row.purpose, 'currency', v_row.currency)
        ELSE jsonb_build_object('kind', v_kind, 'currency', v_row.currency, 'credit_limit_minor', v_limit) END;
    PERFORM ledger_audit_append(p_event, 'ledger.account', v_row.public_id::text,
                                coalesce(p_event->'payload', '{}') || v_payload);
    RETURN v_row.id;
END
$$;

-- Block, unblock or close an account. Closed is final and needs a zero balance with nothing held.
CREATE OR REPLACE FUNCTION ledger_account_status_set(p_account_id bigint, p_status text, p_event jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_row ledger_ledgeraccount%ROWTYPE;
BEGIN
    SELECT * INTO v_row FROM ledger_ledgeraccount WHERE id = p_account_id FOR UPDATE;
    IF NOT FOUND OR v_row.status = 'closed' OR p_status NOT IN ('active', 'blocked', 'closed')
       OR (p_status = 'closed' AND (v_row.posted_minor <> 0 OR v_row.held_minor <> 0)) THEN
        PERFORM ledger_refuse('a closed account stays closed, and only an empty one closes');
    END IF;
    UPDATE ledger_ledgeraccount SET status = p_status WHERE id = p_account_id;
    PERFORM ledger_audit_append(p_event, 'ledger.account', v_row.public_id::text,
                                coalesce(p_event->'payload', '{}') || jsonb_build_object('from', v_row.status,
                                                                                         'to', p_status));
END
$$;

-- The `transfer.posted` notifications of a movement, in its statement: an email to each customer on either side
-- (one, "internal", when both sides are theirs), and the webhook when it came through a client with a webhook URL.
-- What is sent is built from the transfer row at send time (ADR 0010); these rows say to whom. Returns their ids.
CREATE OR REPLACE FUNCTION ledger_outbox_transfer_posted(
    p_transfer uuid, p_kind text, p_amount_minor bigint, p_currency text, p_amount_text text, p_client_id text,
    p_debit_owner bigint, p_credit_owner bigint
) RETURNS bigint[]
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_payload jsonb := jsonb_build_object('transfer', p_transfer::text, 'kind', p_kind,
                                          'amount', coalesce(p_amount_text, ''), 'amount_minor', p_amount_minor::text,
                                          'currency', p_currency);
    v_side record;
    v_id bigint;
    v_ids bigint[] := '{}';
BEGIN
    FOR v_side IN
        SELECT owner_id, CASE WHEN count(*) > 1 THEN 'internal' ELSE min(direction) END AS direction
          FROM (VALUES (p_debit_owner, 'debit'), (p_credit_owner, 'credit')) AS sides (owner_id, direction)
         WHERE owner_id IS NOT NULL GROUP BY owner_id ORDER BY owner_id
    LOOP
        INSERT INTO ledger_outboxmessage (public_id, topic, channel, recipient_user_id, recipient_client_id, payload,
                                          status, attempts, last_error)
        VALUES (gen_random_uuid(), 'transfer.posted', 'email', v_side.owner_id, '',
                v_payload || jsonb_build_object('direction', v_side.direction), 'pending', 0, '')
        RETURNING id INTO v_id;
        v_ids := v_ids || v_id;
    END LOOP;
    IF p_client_id <> '' AND EXISTS (
        SELECT 1 FROM accounts_oauthclientpolicy policy
          JOIN oauth2_provider_application application ON application.id = policy.application_id
         WHERE application.client_id = p_client_id AND policy.webhook_url <> '') THEN
        INSERT INTO ledger_outboxmessage (public_id, topic, channel, recipient_user_id, recipient_client_id, payload,
                                          status, attempts, last_error)
        VALUES (gen_random_uuid(), 'transfer.posted', 'webhook', NULL, p_client_id, v_payload, 'pending', 0, '')
        RETURNING id INTO v_id;
        v_ids := v_ids || v_id;
    END IF;
    RETURN v_ids;
END
$$;

-- On the money tables themselves: a row changes only inside the functions above (current_user is then
-- their owner, the definer role). Privileges already stop the runtime role; this stops the table owner's
-- login too (migrations, a DBA's session), unless it disables the trigger on purpose, which is visible.
CREATE OR REPLACE FUNCTION ledger_money_tables_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF current_user <> (SELECT pg_get_userbyid(p.proowner) FROM pg_proc p
                         WHERE p.oid = 'ledger_movement_post(jsonb,jsonb)'::regprocedure) THEN
        RAISE EXCEPTION '% changes only through the ledger''s functions, not as %', TG_TABLE_NAME, current_user
            USING ERRCODE = '42501';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
