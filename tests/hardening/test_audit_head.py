"""Issue 11, item 20: the audit chain could not show that its newest entries were cut off (what is left is still
a valid chain). Against a running server: the head anchor finds the cut, and keeps finding it after the server has
written more entries; a head published earlier finds it even when the anchor was moved back as well."""

from __future__ import annotations

from sqlalchemy import create_engine, delete, select

from dutyline.store import audit
from dutyline.store.tables import AuditHeadRow, AuditRow, ServerSecretRow
from tests.api.admin_client import Client, create_admin
from tests.conftest import _psycopg, run_cli
from tests.live import LiveServer


def test_entries_cut_off_the_audit_trail_are_reported_by_verify(database_url: str) -> None:
    token = create_admin(database_url)
    server = LiveServer(database_url)
    engine = create_engine(_psycopg(database_url))
    try:
        server.wait_ready()
        root = Client(server, token)
        for n in range(3):
            assert root.post("/admin/users", json={"username": f"user{n}", "roles": []}).status_code == 201
        intact = root.get("/admin/audit/verify").json()
        assert intact["ok"] and intact["head"].startswith(f"{intact['entries']}:"), intact
        published = intact["head"]
        last = intact["entries"]
        with engine.begin() as connection:  # the two newest entries go: say, who created user1 and user2
            connection.execute(delete(AuditRow).where(AuditRow.seq > last - 2))
        cut = root.get("/admin/audit/verify").json()
        assert not cut["ok"] and cut["broken"] == {
            "seq": last - 1,
            "message": f"entries {last - 1} to {last} were removed: the head anchor is entry {last}",
        }
        assert root.post("/admin/users", json={"username": "after", "roles": []}).status_code == 201
        assert not root.get("/admin/audit/verify").json()["ok"], "later entries do not heal the cut"
        # Cut again and move the anchor back too, with the key kept in the database: only the published head knows.
        with engine.begin() as connection:
            connection.execute(delete(AuditRow).where(AuditRow.seq > last - 2))
            key = connection.execute(select(ServerSecretRow.value).where(ServerSecretRow.name == audit.HEAD_SECRET))
            row = connection.execute(select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)).one()
            mac = audit.head_mac(key.scalar_one().encode(), row.seq, row.hash)
            connection.execute(AuditHeadRow.__table__.update().values(seq=row.seq, hash=row.hash, mac=mac))
        assert root.get("/admin/audit/verify").json()["ok"], "the database alone cannot tell now"
        checked = run_cli("audit", "verify", "--head", published, database_url=database_url)
        assert checked.returncode == 1 and f"the published head is entry {last}" in checked.stderr
    finally:
        engine.dispose()
        server.stop()
