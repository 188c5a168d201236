"""Every PostgreSQL advisory lock the service takes, in one place so no two uses collide.

The one-key (bigint) form is reserved for the event store's position floors: the feed reads every
granted one-key advisory lock in `pg_locks` (objsubid = 1) as an append in flight (see
events/store.py). Everything else takes the two-key form (objsubid = 2), with its namespace here.
"""

PROJECTION_RUNNER = 74_021_180  # second key: from the projection's name (session lock)
PROJECTION_REBUILD = 74_021_181  # second key: from the projection's name (session lock)
CASE_COMMANDS = 74_021_182  # second key: hashtext(case id); commands on one case queue (session
# lock from a command's read to its write, application/case_command_store.py; the erasure sweep
# takes it for its transaction)
INSTITUTION_TREE_WRITES = 74_021_183  # second key 0: writes to the tree, one at a time
MIGRATIONS = 74_021_184  # second key 0: one migrator at a time (session lock)
PRINCIPAL_IDS = 74_021_185  # second key: hashtext(principal id); token creations for one id
POLICY_WRITES = 74_021_186  # second key 0: institution policy versions, recorded one at a time
