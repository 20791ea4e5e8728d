-- Staff access changes are recorded by the database, whatever made them (issue 11, item 4).
--
-- The admin and the four-eyes service are not the only ways to change who may do what: a shell, a raw SQL
-- session or a queryset.update() skip every Python check. These triggers write one `access.changed` row into
-- the audit trail (sealed later like any other row) for each change to:
--   accounts_user_groups             a person's roles            payload: change group_added|group_removed, group
--   accounts_user_user_permissions   a person's single perms     payload: change permission_added|permission_removed,
--                                                                          permission (app_label.codename)
--   accounts_user                    is_staff / is_superuser /   payload: change flags_changed|user_created,
--                                    is_active (UPDATE), and the           flags {flag: {old, new}} (old null on insert)
--                                    INSERT of a staff or superuser row
--   auth_group_permissions           what a role may do          payload: change permission_added|permission_removed,
--                                                                          group, permission
--   accounts_user                    email (UPDATE): where         payload: change email_changed (never the address:
--                                    password resets are sent      no app path changes it, so any change alerts;
--                                                                  issue 12, insider review)
-- Every payload also has approved (boolean), approval_request (uuid or null), via (roles_sync or null) and db_role
-- (the database login that made the change). Never an email: the user is object_id (public_id).
--
-- Approved means the transaction ran `set_config('fintech.approval_request', <request public_id>, true)` (the
-- four-eyes service does, once it marked the request applied) and that request is 'applied', is about this very
-- user (subject_id) and was itself written in this transaction (marked applied, or its subject set, just now), so
-- an old applied request cannot be replayed by naming it. Anything else is approved = false, outcome 'failure',
-- and `accounts.alert_unapproved_access_changes` raises an alert for it. A staff row INSERTed under a request is
-- still unapproved (the request cannot name a user before it exists): create the user without staff flags, point
-- the request's subject at it, then set the flags and roles.
--
-- Role definitions (auth_group_permissions) come from code: `roles_sync` rewrites them after every migrate, as
-- the owner role, with `fintech.roles_sync` = 'on'. A change is roles_sync's only if the setting is on AND the
-- session's login is (a member of) the owner role, which owns these functions: the runtime role can set the
-- setting but is not the owner. Such a change is approved = true, via roles_sync; a role created in the same
-- transaction (a new database, or a test flush) records nothing, as it is born equal to its code.
--
-- The functions run as their owner (SECURITY DEFINER, fixed search_path), so the runtime role needs no grant on
-- the tables they read; the triggers are ENABLE ALWAYS, so session_replication_role = replica does not skip
-- them. What they cannot see: TRUNCATE (only the table owner may), and the owner role disabling them.

CREATE OR REPLACE FUNCTION accounts_written_in_this_transaction(p_xmin xid) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_current bigint := pg_current_xact_id()::text::bigint;
    v_raw bigint := p_xmin::text::bigint;
    v_delta bigint;
BEGIN
    IF v_raw < 3 THEN
        RETURN false;  -- bootstrap or frozen
    END IF;
    -- Widen the 32-bit xmin to 64 bits around our own id: a subtransaction's id is a little above it.
    v_delta := (v_raw - (v_current & 4294967295) + 4294967296) % 4294967296;
    IF v_delta >= 2147483648 THEN
        v_delta := v_delta - 4294967296;
    END IF;
    IF v_current + v_delta < 3 THEN
        RETURN false;
    END IF;
    -- A row version we can see whose writer is still running was written by us (or our subtransaction).
    RETURN pg_xact_status((v_current + v_delta)::text::xid8) IS NOT DISTINCT FROM 'in progress';
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;  -- an ancient raw xmin read as a future id
END
$$;

CREATE OR REPLACE FUNCTION accounts_access_approval(p_user_id bigint) RETURNS uuid
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_setting text := coalesce(current_setting('fintech.approval_request', true), '');
    v_request uuid;
BEGIN
    IF p_user_id IS NULL
        OR v_setting !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RETURN NULL;
    END IF;
    SELECT r.public_id INTO v_request FROM public.accounts_approvalrequest r
    WHERE r.public_id = v_setting::uuid
      AND r.status = 'applied'
      AND r.kind IN ('staff.access', 'staff.invite')  -- only kinds that grant access; a 2FA reset grants none
      AND r.subject_id = p_user_id
      AND accounts_written_in_this_transaction(r.xmin);
    RETURN v_request;
END
$$;

CREATE OR REPLACE FUNCTION accounts_access_change_record(p_user_id bigint, p_change jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_request uuid := accounts_access_approval(p_user_id);
    v_user uuid;
    v_approver uuid;
BEGIN
    SELECT u.public_id INTO v_user FROM public.accounts_user u WHERE u.id = p_user_id;
    IF v_request IS NOT NULL THEN
        SELECT u.public_id INTO v_approver FROM public.accounts_approvalrequest r
        JOIN public.accounts_user u ON u.id = r.decided_by_id WHERE r.public_id = v_request;
    END IF;
    INSERT INTO public.audit_auditevent (event_type, outcome, actor_user, actor_client, actor_staff, object_type,
        object_id, purpose, request_id, source_ip, user_agent, payload)
    VALUES ('access.changed', CASE WHEN v_request IS NOT NULL THEN 'success' ELSE 'failure' END, '', '',
        coalesce(v_approver::text, ''), 'accounts.user', coalesce(v_user::text, ''), '', '', NULL, '',
        p_change || jsonb_build_object(
            'approved', v_request IS NOT NULL,
            'approval_request', v_request,
            'via', NULL,
            'db_role', session_user::text));
END
$$;

CREATE OR REPLACE FUNCTION accounts_user_groups_audit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.user_id = NEW.user_id AND OLD.group_id = NEW.group_id THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM accounts_access_change_record(OLD.user_id, jsonb_build_object(
            'change', 'group_removed',
            'group', coalesce((SELECT g.name FROM public.auth_group g WHERE g.id = OLD.group_id), '#' || OLD.group_id)));
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM accounts_access_change_record(NEW.user_id, jsonb_build_object(
            'change', 'group_added',
            'group', coalesce((SELECT g.name FROM public.auth_group g WHERE g.id = NEW.group_id), '#' || NEW.group_id)));
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION accounts_permission_code(p_permission_id integer) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT coalesce(
        (SELECT ct.app_label || '.' || p.codename
         FROM public.auth_permission p JOIN public.django_content_type ct ON ct.id = p.content_type_id
         WHERE p.id = p_permission_id),
        '#' || p_permission_id)
$$;

CREATE OR REPLACE FUNCTION accounts_user_permissions_audit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.user_id = NEW.user_id AND OLD.permission_id = NEW.permission_id THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM accounts_access_change_record(OLD.user_id, jsonb_build_object(
            'change', 'permission_removed', 'permission', accounts_permission_code(OLD.permission_id)));
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM accounts_access_change_record(NEW.user_id, jsonb_build_object(
            'change', 'permission_added', 'permission', accounts_permission_code(NEW.permission_id)));
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION accounts_user_flags_audit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_flags jsonb := '{}'::jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        v_flags := jsonb_build_object(
            'is_active', jsonb_build_object('old', NULL, 'new', NEW.is_active),
            'is_staff', jsonb_build_object('old', NULL, 'new', NEW.is_staff),
            'is_superuser', jsonb_build_object('old', NULL, 'new', NEW.is_superuser));
    ELSE
        IF OLD.is_active IS DISTINCT FROM NEW.is_active THEN
            v_flags := v_flags || jsonb_build_object(
                'is_active', jsonb_build_object('old', OLD.is_active, 'new', NEW.is_active));
        END IF;
        IF OLD.is_staff IS DISTINCT FROM NEW.is_staff THEN
            v_flags := v_flags || jsonb_build_object(
                'is_staff', jsonb_build_object('old', OLD.is_staff, 'new', NEW.is_staff));
        END IF;
        IF OLD.is_superuser IS DISTINCT FROM NEW.is_superuser THEN
            v_flags := v_flags || jsonb_build_object(
                'is_superuser', jsonb_build_object('old', OLD.is_superuser, 'new', NEW.is_superuser));
        END IF;
        IF v_flags = '{}'::jsonb THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM accounts_access_change_record(NEW.id, jsonb_build_object(
        'change', CASE WHEN TG_OP = 'INSERT' THEN 'user_created' ELSE 'flags_changed' END,
        'flags', v_flags));
    RETURN NULL;
END
$$;

-- A changed email redirects the customer's password reset: an account taken over with the database login.
CREATE OR REPLACE FUNCTION accounts_user_email_audit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM accounts_access_change_record(NEW.id, jsonb_build_object('change', 'email_changed'));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION accounts_role_change_record(
    p_group_id integer, p_permission_id integer, p_change text
) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    -- current_user is this function's owner (the trigger function is SECURITY DEFINER): the owner role.
    v_roles_sync boolean := coalesce(current_setting('fintech.roles_sync', true), '') = 'on'
        AND pg_has_role(session_user, current_user, 'MEMBER');
    v_name text;
    v_group_xmin xid;
BEGIN
    SELECT g.name, g.xmin INTO v_name, v_group_xmin FROM public.auth_group g WHERE g.id = p_group_id;
    IF v_roles_sync AND v_group_xmin IS NOT NULL AND accounts_written_in_this_transaction(v_group_xmin) THEN
        RETURN;  -- a role created just now from its definition in code: nothing was changed
    END IF;
    v_name := coalesce(v_name, '#' || p_group_id);
    INSERT INTO public.audit_auditevent (event_type, outcome, actor_user, actor_client, actor_staff, object_type,
        object_id, purpose, request_id, source_ip, user_agent, payload)
    VALUES ('access.changed', CASE WHEN v_roles_sync THEN 'success' ELSE 'failure' END, '',
        CASE WHEN v_roles_sync THEN 'system:roles_sync' ELSE '' END, '', 'auth.group', v_name, '', '', NULL, '',
        jsonb_build_object(
            'change', p_change,
            'group', v_name,
            'permission', accounts_permission_code(p_permission_id),
            'approved', v_roles_sync,
            'approval_request', NULL,
            'via', CASE WHEN v_roles_sync THEN 'roles_sync' END,
            'db_role', session_user::text));
END
$$;

CREATE OR REPLACE FUNCTION accounts_group_permissions_audit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.group_id = NEW.group_id AND OLD.permission_id = NEW.permission_id THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM accounts_role_change_record(OLD.group_id, OLD.permission_id, 'permission_removed');
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM accounts_role_change_record(NEW.group_id, NEW.permission_id, 'permission_added');
    END IF;
    RETURN NULL;
END
$$;

-- Only the trigger functions are entry points; the helpers run as the owner, from them.
REVOKE EXECUTE ON FUNCTION accounts_written_in_this_transaction(xid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION accounts_access_approval(bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION accounts_access_change_record(bigint, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION accounts_permission_code(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION accounts_role_change_record(integer, integer, text) FROM PUBLIC;

CREATE OR REPLACE TRIGGER accounts_user_groups_access_changed
    AFTER INSERT OR UPDATE OR DELETE ON public.accounts_user_groups
    FOR EACH ROW EXECUTE FUNCTION accounts_user_groups_audit();
CREATE OR REPLACE TRIGGER accounts_user_user_permissions_access_changed
    AFTER INSERT OR UPDATE OR DELETE ON public.accounts_user_user_permissions
    FOR EACH ROW EXECUTE FUNCTION accounts_user_permissions_audit();
CREATE OR REPLACE TRIGGER accounts_user_flags_access_changed
    AFTER UPDATE OF is_staff, is_superuser, is_active ON public.accounts_user
    FOR EACH ROW
    WHEN (OLD.is_staff IS DISTINCT FROM NEW.is_staff OR OLD.is_superuser IS DISTINCT FROM NEW.is_superuser
          OR OLD.is_active IS DISTINCT FROM NEW.is_active)
    EXECUTE FUNCTION accounts_user_flags_audit();
CREATE OR REPLACE TRIGGER accounts_user_email_access_changed
    AFTER UPDATE OF email ON public.accounts_user
    FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email)
    EXECUTE FUNCTION accounts_user_email_audit();
CREATE OR REPLACE TRIGGER accounts_user_staff_created_access_changed
    AFTER INSERT ON public.accounts_user
    FOR EACH ROW WHEN (NEW.is_staff OR NEW.is_superuser)
    EXECUTE FUNCTION accounts_user_flags_audit();
CREATE OR REPLACE TRIGGER auth_group_permissions_access_changed
    AFTER INSERT OR UPDATE OR DELETE ON public.auth_group_permissions
    FOR EACH ROW EXECUTE FUNCTION accounts_group_permissions_audit();

ALTER TABLE public.accounts_user_groups ENABLE ALWAYS TRIGGER accounts_user_groups_access_changed;
ALTER TABLE public.accounts_user_user_permissions ENABLE ALWAYS TRIGGER accounts_user_user_permissions_access_changed;
ALTER TABLE public.accounts_user ENABLE ALWAYS TRIGGER accounts_user_flags_access_changed;
ALTER TABLE public.accounts_user ENABLE ALWAYS TRIGGER accounts_user_staff_created_access_changed;
ALTER TABLE public.accounts_user ENABLE ALWAYS TRIGGER accounts_user_email_access_changed;
ALTER TABLE public.auth_group_permissions ENABLE ALWAYS TRIGGER auth_group_permissions_access_changed;
