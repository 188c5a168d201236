"""Erasure and repeat complainants: the case view knows when a case closed, whether its personal
data is held or erased, and the blind index of its complainant's identity document; the blind
index's own key is kept wrapped under the master key.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `closed_on`: the day the case closed (None while open), from which retention runs; the
    # sweep finds the cases past retention through `case_view_erasable`. `personal_data`:
    # 'held' or 'erased'. `complainant_index`: a keyed hash of the normalised identity document
    # (crypto/blind_index.py), None for a complainant without one and once erased.
    # Rows written before this migration read as held and not closed until a rebuild
    # (`complaintcore projections rebuild case_view`) fills the columns from the events.
    op.execute(
        """
        ALTER TABLE case_view
            ADD COLUMN closed_on date,
            ADD COLUMN personal_data text NOT NULL DEFAULT 'held'
                CHECK (personal_data IN ('held', 'erased')),
            ADD COLUMN complainant_index text
        """
    )
    op.execute(
        "CREATE INDEX case_view_erasable ON case_view (closed_on, case_id)"
        " WHERE personal_data = 'held' AND closed_on IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX case_view_complainant_index ON case_view (complainant_index)"
        " WHERE complainant_index IS NOT NULL"
    )
    # Keys the service needs besides the cases' own, each wrapped under the master key like a
    # data key (so `keys rotate` re-wraps them, and a rotation leaves the blind index as it is).
    op.execute(
        """
        CREATE TABLE service_keys (
            purpose      text        PRIMARY KEY,
            suite        text        NOT NULL CHECK (suite IN ('aes-256-gcm', 'sm4-gcm')),
            key_id       text        NOT NULL,
            wrapped      bytea       NOT NULL,
            created_at   timestamptz NOT NULL DEFAULT now(),
            rewrapped_at timestamptz
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE service_keys")
    op.execute("DROP INDEX case_view_complainant_index")
    op.execute("DROP INDEX case_view_erasable")
    op.execute(
        "ALTER TABLE case_view DROP COLUMN complainant_index, DROP COLUMN personal_data,"
        " DROP COLUMN closed_on"
    )
