"""`HEAD_REVISION`, which lets a start skip Alembic when there is nothing to migrate, is the
head Alembic itself finds in the migrations folder: a new migration must move it."""

from alembic.script import ScriptDirectory

from complaintcore.infra.migrations import HEAD_REVISION, alembic_config


def test_the_head_revision_is_the_one_alembic_finds() -> None:
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused/unused"))
    assert script.get_heads() == [HEAD_REVISION]
