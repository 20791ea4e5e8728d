-- The policy step (ADR 0014): one place decides whether money may leave a customer, for every kind of
-- outgoing movement (transfer, hold, credit_charge, refund, capture), with the same refusal codes.
--
-- Two functions, both called while the caller holds the row locks of the accounts the movement touches
-- (ledger/lock_objects.py: accounts, then holds, then spend counters, then transfers):
--
-- ledger_policy_check: reads only, except that it makes sure the owner's spend counter row for the
--   business day exists and locks it. That row lock is the owner's critical section for the daily limit:
--   from here to COMMIT, so the total it reads is exact under concurrency. Refusals are RETURNED (stable
--   code + the numbers its message needs), never raised, so the caller's transaction stays usable.
-- ledger_policy_count: the writes, once the caller knows the movement happens (funds checked): the day's
--   counter and the minute's velocity bucket. O(1) per movement: no scan of postings.
--
-- Profile status: a blocked or closed customer neither sends nor receives, except by a refund back along
-- the original path (which still counts against the refunder's limits). A capture re-checks both
-- customers' status and nothing else: its hold counted when it reserved the money.
--
-- Cool-off (ADR 0015): for 24 hours after staff reset a customer's lost second factor, nothing leaves
-- that customer (`second_factor_recently_reset`, with the time it ends); receiving and captures by them
-- as payee still work.

CREATE OR REPLACE FUNCTION ledger_policy_check(
    p_movement text,
    p_sender bigint,
    p_receiver bigint,
    p_currency text,
    p_amount_minor bigint,
    p_now timestamptz,
    p_time_zone text,
    OUT r_refusal text,
    OUT r_refusal_data jsonb,
    OUT r_action text,
    OUT r_reasons jsonb,
    OUT r_limit_day date
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now timestamptz := greatest(p_now, clock_timestamp());
    v_sender_status text;
    v_sender_paused_until timestamptz;
    v_tier text;
    v_receiver_status text;
    v_per_movement_max bigint;
    v_daily_max bigint;
    v_sent bigint;
    v_rule record;
    v_hit boolean;
    v_recent bigint;
    v_oldest timestamptz;
    v_hold boolean := false;
BEGIN
    IF p_movement NOT IN ('transfer', 'hold', 'credit_charge', 'refund', 'capture') THEN
        RAISE EXCEPTION 'ledger_policy_check: unknown movement %', p_movement USING ERRCODE = 'LG001';
    END IF;
    r_reasons := '[]'::jsonb;
    SELECT status, tier, sending_paused_until INTO v_sender_status, v_tier, v_sender_paused_until
      FROM accounts_customerprofile WHERE user_id = p_sender;
    IF NOT FOUND THEN
        r_refusal := 'sender_not_a_customer';
        RETURN;
    END IF;
    IF p_receiver IS NOT NULL THEN
        SELECT status INTO v_receiver_status FROM accounts_customerprofile WHERE user_id = p_receiver;
    END IF;
    IF p_movement = 'refund' THEN
        -- Back along the original path: blocked customers may take part, closed ones may not.
        IF v_sender_status = 'closed' OR v_receiver_status IS NOT DISTINCT FROM 'closed' THEN
            r_refusal := 'account_not_active';
            RETURN;
        END IF;
    ELSIF v_sender_status <> 'active' OR (v_receiver_status IS NOT NULL AND v_receiver_status <> 'active') THEN
        r_refusal := 'account_not_active';
        RETURN;
    END IF;
    IF p_movement = 'capture' THEN
        r_action := 'post';
        RETURN;
    END IF;
    IF v_sender_paused_until > v_now THEN
        r_refusal := 'second_factor_recently_reset';
        r_refusal_data := jsonb_build_object('resets_at', v_sender_paused_until);
        RETURN;
    END IF;

    SELECT per_transfer_max_minor, daily_outgoing_max_minor INTO v_per_movement_max, v_daily_max
      FROM ledger_transferlimit WHERE tier = v_tier AND currency = p_currency;
    -- Fail closed: a currency needs a limit for the tier and an active review threshold.
    IF NOT FOUND OR NOT EXISTS (
        SELECT 1 FROM ledger_transferrule
         WHERE active AND kind = 'review_threshold' AND currency = p_currency) THEN
        r_refusal := 'limit_not_configured';
        RETURN;
    END IF;
    IF p_amount_minor > v_per_movement_max THEN
        r_refusal := 'limit_per_transfer_exceeded';
        r_refusal_data := jsonb_build_object('limit_minor', v_per_movement_max);
        RETURN;
    END IF;

    r_limit_day := (v_now AT TIME ZONE p_time_zone)::date;
    INSERT INTO ledger_spendcounter (owner_id, currency, business_day, outgoing_minor, movements)
    VALUES (p_sender, p_currency, r_limit_day, 0, 0)
    ON CONFLICT (owner_id, currency, business_day) DO NOTHING;
    SELECT outgoing_minor INTO v_sent FROM ledger_spendcounter
     WHERE owner_id = p_sender AND currency = p_currency AND business_day = r_limit_day
       FOR UPDATE;
    IF v_sent + p_amount_minor > v_daily_max THEN
        r_refusal := 'limit_daily_exceeded';
        r_refusal_data := jsonb_build_object(
            'limit_minor', v_daily_max,
            'remaining_minor', greatest(v_daily_max - v_sent, 0),
            'resets_at', ((r_limit_day + 1)::timestamp AT TIME ZONE p_time_zone));
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
            -- The current minute's bucket and the `window` whole minutes before it (at most 1,441 rows): a
            -- superset of the trailing window, so no burst across a minute boundary gets past the rule.
            SELECT coalesce(sum(movements), 0), min(minute) INTO v_recent, v_oldest FROM ledger_velocitybucket
             WHERE owner_id = p_sender
               AND (v_rule.currency = '' OR currency = v_rule.currency)
               AND minute >= date_trunc('minute', v_now) - make_interval(mins => v_rule.window_minutes);
            v_hit := v_recent >= v_rule.max_count;  -- this movement would be one more than allowed
        ELSE
            CONTINUE;
        END IF;
        CONTINUE WHEN NOT v_hit;
        IF v_rule.action = 'refuse' THEN
            IF v_rule.kind = 'velocity' THEN
                r_refusal := 'velocity_exceeded';
                r_refusal_data := jsonb_build_object(
                    'max_count', v_rule.max_count, 'window_minutes', v_rule.window_minutes,
                    -- when the oldest counted minute leaves the window (a retry may still be refused after it)
                    'retry_after_seconds', greatest(1, ceil(extract(epoch FROM
                        v_oldest + make_interval(mins => v_rule.window_minutes + 1) - v_now)))::int);
            ELSE
                r_refusal := 'transfer_refused_by_rule';
            END IF;
            r_reasons := '[]'::jsonb;
            RETURN;
        END IF;
        r_reasons := r_reasons || to_jsonb(v_rule.name::text);
        v_hold := v_hold OR v_rule.action = 'hold_for_review';
    END LOOP;

    r_action := CASE WHEN v_hold THEN 'hold_for_review'
                     WHEN jsonb_array_length(r_reasons) > 0 THEN 'flag'
                     ELSE 'post' END;
END
$$;

CREATE OR REPLACE FUNCTION ledger_policy_count(
    p_sender bigint,
    p_currency text,
    p_amount_minor bigint,
    p_limit_day date,
    p_now timestamptz
) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_counted int;
BEGIN
    UPDATE ledger_spendcounter
       SET outgoing_minor = outgoing_minor + p_amount_minor, movements = movements + 1
     WHERE owner_id = p_sender AND currency = p_currency AND business_day = p_limit_day;
    GET DIAGNOSTICS v_counted = ROW_COUNT;
    IF v_counted <> 1 THEN
        RAISE EXCEPTION 'spend counter of owner % (%, %) missing: ledger_policy_check did not run',
            p_sender, p_currency, p_limit_day USING ERRCODE = 'LG001';
    END IF;
    INSERT INTO ledger_velocitybucket (owner_id, currency, minute, movements)
    VALUES (p_sender, p_currency, date_trunc('minute', greatest(p_now, clock_timestamp())), 1)
    ON CONFLICT (owner_id, currency, minute) DO UPDATE SET movements = ledger_velocitybucket.movements + 1;
END
$$;

-- What a hold gives back when it is voided, expires or its review is rejected: the part it did not capture,
-- on the day it was reserved (a hold created yesterday frees yesterday's total, not today's).
CREATE OR REPLACE FUNCTION ledger_policy_release(
    p_sender bigint,
    p_currency text,
    p_amount_minor bigint,
    p_limit_day date
) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_released int;
BEGIN
    IF p_limit_day IS NULL OR p_amount_minor = 0 THEN
        RETURN;
    END IF;
    UPDATE ledger_spendcounter SET outgoing_minor = outgoing_minor - p_amount_minor
     WHERE owner_id = p_sender AND currency = p_currency AND business_day = p_limit_day
       AND outgoing_minor >= p_amount_minor;
    GET DIAGNOSTICS v_released = ROW_COUNT;
    IF v_released <> 1 THEN
        RAISE EXCEPTION 'spend counter of owner % (%, %) cannot give back %',
            p_sender, p_currency, p_limit_day, p_amount_minor USING ERRCODE = 'LG001';
    END IF;
END
$$;
