"""The audit trail cannot be wiped quietly (Postgres): TRUNCATE of the trail or of its head is
refused, and the head only moves forward -- to a row that exists with the hash it names -- and is
never deleted. Someone who can switch triggers off (a superuser, the table's owner) is caught by
the signed checkpoints instead (``releases.audit.checkpoints``); docs/audit.md sets up a role
for the app that cannot."""

from django.db import migrations

GUARD = """
CREATE OR REPLACE FUNCTION releases_audit_no_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail cannot be truncated: TRUNCATE of % refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER IF EXISTS releases_auditevent_no_truncate ON releases_auditevent;
CREATE TRIGGER releases_auditevent_no_truncate
    BEFORE TRUNCATE ON releases_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION releases_audit_no_truncate();
DROP TRIGGER IF EXISTS releases_auditchainhead_no_truncate ON releases_auditchainhead;
CREATE TRIGGER releases_auditchainhead_no_truncate
    BEFORE TRUNCATE ON releases_auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION releases_audit_no_truncate();

CREATE OR REPLACE FUNCTION releases_auditchainhead_forward() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the audit chain head only moves forward: DELETE refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'UPDATE' AND (
        NEW.id <> OLD.id
        OR NEW.length < OLD.length
        OR NEW.last_id < OLD.last_id
        OR (NEW.length = OLD.length AND (NEW.last_id, NEW.last_hash) <> (OLD.last_id, OLD.last_hash))
    ) THEN
        RAISE EXCEPTION 'the audit chain head only moves forward: % rows (#%) to % rows (#%) refused',
            OLD.length, OLD.last_id, NEW.length, NEW.last_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.length > 0 AND NOT EXISTS (
        SELECT 1 FROM releases_auditevent WHERE id = NEW.last_id AND hash = NEW.last_hash
    ) THEN
        RAISE EXCEPTION 'the audit chain head only moves forward: row #% with that hash does not exist',
            NEW.last_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
DROP TRIGGER IF EXISTS releases_auditchainhead_forward ON releases_auditchainhead;
CREATE TRIGGER releases_auditchainhead_forward
    BEFORE INSERT OR UPDATE OR DELETE ON releases_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION releases_auditchainhead_forward();
"""
UNGUARD = """
DROP TRIGGER IF EXISTS releases_auditevent_no_truncate ON releases_auditevent;
DROP TRIGGER IF EXISTS releases_auditchainhead_no_truncate ON releases_auditchainhead;
DROP TRIGGER IF EXISTS releases_auditchainhead_forward ON releases_auditchainhead;
DROP FUNCTION IF EXISTS releases_audit_no_truncate();
DROP FUNCTION IF EXISTS releases_auditchainhead_forward();
"""


def guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD, None)


def unguard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNGUARD, None)


class Migration(migrations.Migration):
    dependencies = [("releases", "0006_provider_choices_from_registry")]

    operations = [migrations.RunPython(guard, unguard)]
