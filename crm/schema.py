"""The store's schema, as numbered migrations shared by SQLite and PostgreSQL.

Each migration is a list of statements in which ``{id}`` (an auto-numbered primary
key) and ``{json}`` (a JSON document) are spelled per backend. Applied versions are
rows of ``agner_schema``; :meth:`Store.__init__` applies the missing ones in one
transaction and refuses a store whose version is newer than this code's.

Never edit a migration that has shipped: append a new one.

Every table carries ``tenant``; child rows reference their parent by
``(tenant, id)``, so a row can never point into another tenant.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["MIGRATIONS", "Migration", "latest_version"]


class Migration(NamedTuple):
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "customers, their phones and e-mail addresses, leads, interactions",
        (
            """CREATE TABLE customers (
                id {id},
                tenant TEXT NOT NULL,
                name TEXT NOT NULL,
                tier TEXT NOT NULL,
                language TEXT,
                attributes {json} NOT NULL,
                created_us BIGINT NOT NULL,
                updated_us BIGINT NOT NULL,
                UNIQUE (tenant, id)
            )""",
            """CREATE TABLE customer_phones (
                tenant TEXT NOT NULL,
                phone TEXT NOT NULL,
                customer_id BIGINT NOT NULL,
                position INTEGER NOT NULL,
                PRIMARY KEY (tenant, phone),
                FOREIGN KEY (tenant, customer_id) REFERENCES customers (tenant, id)
                    ON DELETE CASCADE
            )""",
            "CREATE INDEX customer_phones_owner ON customer_phones (tenant, customer_id)",
            """CREATE TABLE customer_emails (
                tenant TEXT NOT NULL,
                email TEXT NOT NULL,
                customer_id BIGINT NOT NULL,
                position INTEGER NOT NULL,
                PRIMARY KEY (tenant, email),
                FOREIGN KEY (tenant, customer_id) REFERENCES customers (tenant, id)
                    ON DELETE CASCADE
            )""",
            "CREATE INDEX customer_emails_owner ON customer_emails (tenant, customer_id)",
            """CREATE TABLE leads (
                id {id},
                tenant TEXT NOT NULL,
                phone TEXT,
                email TEXT,
                name TEXT,
                notes TEXT,
                created_us BIGINT NOT NULL,
                converted_to BIGINT,
                UNIQUE (tenant, id),
                FOREIGN KEY (tenant, converted_to) REFERENCES customers (tenant, id)
            )""",
            # One open lead per number (and per address) in a tenant.
            """CREATE UNIQUE INDEX leads_open_phone ON leads (tenant, phone)
                WHERE converted_to IS NULL AND phone IS NOT NULL""",
            """CREATE UNIQUE INDEX leads_open_email ON leads (tenant, email)
                WHERE converted_to IS NULL AND email IS NOT NULL""",
            "CREATE INDEX leads_converted ON leads (tenant, converted_to)",
            """CREATE TABLE interactions (
                id {id},
                tenant TEXT NOT NULL,
                ref TEXT,
                channel TEXT NOT NULL,
                outcome TEXT NOT NULL,
                caller TEXT,
                called TEXT,
                queue TEXT,
                agent TEXT,
                arrived_us BIGINT NOT NULL,
                offered_us BIGINT,
                answered_us BIGINT,
                ended_us BIGINT NOT NULL,
                wrap_up_end_us BIGINT,
                wait_us BIGINT NOT NULL,
                talk_us BIGINT,
                wrap_up_us BIGINT,
                disposition TEXT,
                satisfaction SMALLINT,
                notes TEXT,
                recording TEXT,
                customer_id BIGINT,
                lead_id BIGINT,
                FOREIGN KEY (tenant, customer_id) REFERENCES customers (tenant, id),
                FOREIGN KEY (tenant, lead_id) REFERENCES leads (tenant, id)
            )""",
            """CREATE UNIQUE INDEX interactions_ref ON interactions (tenant, ref)
                WHERE ref IS NOT NULL""",
            # Preferred agents and history: a customer's latest contacts.
            """CREATE INDEX interactions_customer
                ON interactions (tenant, customer_id, ended_us)""",
            "CREATE INDEX interactions_lead ON interactions (tenant, lead_id, ended_us)",
            # Reports: contacts by arrival time.
            "CREATE INDEX interactions_arrived ON interactions (tenant, arrived_us)",
        ),
    ),
]


def latest_version() -> int:
    """The schema version this code writes."""
    return MIGRATIONS[-1].version
