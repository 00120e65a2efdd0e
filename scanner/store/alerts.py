"""Topic subscriptions, the alerts decided for them, and the per-channel delivery outbox."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .core import Tables, utcnow


class AlertTables(Tables):
    """`subscriptions`, `alerts` and `outbox` (one row per subscription, development and channel)."""

    def subscription(self, name: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from subscriptions where name = ?", [name]))
        return rows[0] if rows else None

    def subscriptions(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("select * from subscriptions order by name")]

    def save_subscription(self, row: dict[str, Any], channels: Iterable[str]) -> None:
        """Insert or replace a subscription; undelivered alerts to channels it no longer has are dropped."""
        keep = list(channels)
        with self.atomic():
            self.db["subscriptions"].upsert(row, pk="name")
            self.db.execute(
                f"""delete from outbox where subscription = ? and state != 'sent'
                    and channel not in ({','.join('?' * len(keep)) or 'null'})""", [row["name"], *keep])

    def delete_subscription(self, name: str) -> bool:
        """Remove a subscription and its undelivered alerts; sent ones stay as history."""
        with self.atomic():
            found = self.db.execute("delete from subscriptions where name = ?", [name]).rowcount
            self.db.execute("delete from outbox where subscription = ? and state != 'sent'", [name])
        return bool(found)

    def alerted_ids(self, subscription: str) -> set[int]:
        """Developments already decided for this subscription: each is alerted at most once."""
        return {r[0] for r in self.db.execute("select development_id from alerts where subscription = ?", [subscription])}

    def add_alert(self, subscription: str, development_id: int, score: float, deliveries: dict[str, str]) -> None:
        """Record an alert and queue one delivery per channel (`deliveries` maps channel to Message-ID)."""
        now = utcnow()
        with self.atomic():
            self.db["alerts"].insert(
                {"subscription": subscription, "development_id": development_id, "score": score, "created_at": now},
                ignore=True)
            self.db["outbox"].insert_all(
                ({"subscription": subscription, "development_id": development_id, "channel": channel,
                  "state": "pending", "attempts": 0, "message_id": message_id, "created_at": now, "updated_at": now}
                 for channel, message_id in deliveries.items()),
                ignore=True)

    def deliveries(self, states: Iterable[str] | None = None, subscription: str | None = None,
                   limit: int | None = None) -> list[dict[str, Any]]:
        """Outbox rows with their alert's score, oldest first, optionally only in `states` / of one subscription."""
        wanted = list(states or [])
        where, args = [], []
        if wanted:
            where.append(f"o.state in ({','.join('?' * len(wanted))})")
            args.extend(wanted)
        if subscription:
            where.append("o.subscription = ?")
            args.append(subscription)
        order = "order by o.id desc limit ?" if limit else "order by o.id"
        return [dict(r) for r in self.db.query(
            f"""select o.*, a.score from outbox o left join alerts a
                on a.subscription = o.subscription and a.development_id = o.development_id
                {'where ' + ' and '.join(where) if where else ''} {order}""", [*args, *([limit] if limit else [])])]

    def claim(self, delivery_id: int) -> bool:
        """Mark a pending or failed delivery 'sending' and commit, before anything is sent.

        False when another run claimed it first; committing first is what lets a crash mid-send be
        recognised afterwards (a row left 'sending') instead of silently sending twice.
        """
        with self.atomic():
            claimed = self.db.execute(
                "update outbox set state = 'sending', updated_at = ? where id = ? and state in ('pending', 'failed')",
                [utcnow(), delivery_id]).rowcount
        return bool(claimed)

    def finish(self, delivery_id: int, error: str | None) -> None:
        """Record the outcome of a claimed delivery: 'sent', or 'failed' (retried next run) with why."""
        now = utcnow()
        with self.atomic():
            self.db.execute(
                """update outbox set state = ?, last_error = ?, attempts = coalesce(attempts, 0) + 1,
                   updated_at = ?, sent_at = ? where id = ?""",
                ["failed" if error else "sent", error, now, None if error else now, delivery_id])

    def mark_unconfirmed(self, claimed_before: str) -> list[dict[str, Any]]:
        """Deliveries left 'sending' since before `claimed_before` (a crashed run) become 'unconfirmed'."""
        with self.atomic():
            rows = [dict(r) for r in self.db.query(
                "select * from outbox where state = 'sending' and updated_at < ? order by id", [claimed_before])]
            self.db.execute("update outbox set state = 'unconfirmed', updated_at = ? where state = 'sending' and updated_at < ?",
                            [utcnow(), claimed_before])
        return rows

    def requeue_unconfirmed(self) -> int:
        """Put 'unconfirmed' deliveries back in the queue, when an operator decides to resend them."""
        with self.atomic():
            return self.db.execute("update outbox set state = 'pending', updated_at = ? where state = 'unconfirmed'",
                                   [utcnow()]).rowcount
