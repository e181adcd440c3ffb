"""audit_append(): one PostgreSQL round trip per audit append.

`record()` used to take the advisory lock, read the chain head, hash in Python and insert through
the ORM: about five round trips while holding the lock that every writer waits for. This function
does the part that needs the lock inside the server: take the lock, read the head (a VOLATILE
function's statements each take a fresh snapshot in READ COMMITTED, so the head read after the
lock is the latest committed one), number the event, hash and insert. Python passes the
canonical JSON around the two values only known under the lock (`prev_hash`, `seq`), so the
hashed bytes are exactly those `AuditEvent.canonical()` gives: the hash format does not change
and existing chains still verify. SQLite keeps the ORM path.
"""

from django.db import migrations

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION audit_append(
    lock_key bigint, parts text[], p_at timestamptz,
    p_actor_id bigint, p_actor_name text, p_action text, p_target text, p_environment text,
    p_ip inet, p_user_agent text, p_request_id text, p_details jsonb, p_outcome text,
    OUT new_id bigint, OUT new_seq bigint, OUT new_prev_hash text, OUT new_hash text
) AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT seq, hash INTO new_seq, new_prev_hash FROM audit_auditevent ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        new_seq := 0;
        new_prev_hash := repeat('0', 64);
    END IF;
    new_seq := new_seq + 1;
    new_hash := encode(sha256(convert_to(parts[1] || new_prev_hash || parts[2] || new_seq::text || parts[3],
                                         'UTF8')), 'hex');
    INSERT INTO audit_auditevent (seq, at, actor_id, actor_name, action, target, environment, ip,
                                  user_agent, request_id, details, outcome, prev_hash, hash)
    VALUES (new_seq, p_at, p_actor_id, p_actor_name, p_action, p_target, p_environment, p_ip,
            p_user_agent, p_request_id, p_details, p_outcome, new_prev_hash, new_hash)
    RETURNING id INTO new_id;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""
POSTGRES_DOWN = """
DROP FUNCTION IF EXISTS audit_append(bigint, text[], timestamptz, bigint, text, text, text, text, inet, text, text, jsonb, text);
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_action_prefix_index")]
    operations = [migrations.RunPython(install, remove)]
