"""The clause workspace's memory: each clause's text versions and the reviews specialists recorded."""

from __future__ import annotations

from typing import Any

from .core import Tables, utcnow


class WorkspaceTables(Tables):
    """`clause_versions` (one row per clause text ever seen) and `reviews`."""

    def record_versions(self, clauses: list[dict[str, Any]], hashes: dict[str, str]) -> dict[str, list[str]]:
        """Store each clause's current text as a version if new; mark clauses no longer in the corpus removed.

        Returns {"added": [...], "changed": [...], "removed": [...]} clause ids, so a caller can say what moved.
        """
        now = utcnow()
        known = {r["clause_id"]: r for r in self.db.query(
            """select v.* from clause_versions v join (select clause_id, max(id) as id from clause_versions
               group by clause_id) last on last.id = v.id""")}
        present = {c["id"] for c in clauses}
        moved: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
        with self.atomic():
            for clause in clauses:
                digest = hashes[clause["id"]]
                last = known.get(clause["id"])
                if last is not None and last["hash"] == digest and not last["removed_at"]:
                    self.db["clause_versions"].update(last["id"], {"file": clause["file"], "line": clause["line"]})
                    continue
                if last is not None and last["hash"] == digest:
                    self.db["clause_versions"].update(last["id"], {"removed_at": None})
                    moved["added"].append(clause["id"])
                    continue
                self.db["clause_versions"].insert(
                    {"clause_id": clause["id"], "hash": digest, "title": clause["title"], "policy": clause["policy"],
                     "file": clause["file"], "line": clause["line"], "text": clause["text"], "first_seen": now},
                    ignore=True)
                moved["changed" if last is not None else "added"].append(clause["id"])
            by_hash = {hashes[c["id"]]: c["id"] for c in clauses if c["id"] in moved["added"]}
            for clause_id, last in known.items():
                if clause_id not in present and not last["removed_at"]:
                    self.db["clause_versions"].update(
                        last["id"], {"removed_at": now, "renamed_to": by_hash.get(last["hash"])})
                    moved["removed"].append(clause_id)
        return moved

    def versions(self, clause_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("select * from clause_versions where clause_id = ? order by id", [clause_id])]

    def known_clause_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("select distinct clause_id from clause_versions order by clause_id")]

    def latest_versions(self) -> dict[str, dict[str, Any]]:
        return {r["clause_id"]: dict(r) for r in self.db.query(
            """select v.* from clause_versions v join (select clause_id, max(id) as id from clause_versions
               group by clause_id) last on last.id = v.id""")}

    def add_review(self, clause_id: str, by: str | None, note: str | None, clause_hash: str | None) -> dict[str, Any]:
        row = {"clause_id": clause_id, "at": utcnow(), "by": by, "note": note, "clause_hash": clause_hash}
        with self.atomic():
            row["id"] = self.db["reviews"].insert(row).last_pk
        return row

    def reviews(self, clause_id: str | None = None) -> list[dict[str, Any]]:
        if clause_id is None:
            return [dict(r) for r in self.db.query("select * from reviews order by id")]
        return [dict(r) for r in self.db.query("select * from reviews where clause_id = ? order by id", [clause_id])]
