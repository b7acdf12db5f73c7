"""Sync's storage, one room each: what a change is, how it merges, and each end's side of moving it.

- `changes`: the change (the one shape sync moves) and records as changes.
- `merge`: merging a change into a node's records, the same at both ends.
- `refusal`: `SyncRefused` and its `Reason` (the sync API maps a reason to an HTTP status).
- `devices`: enrolment codes, enrolling and revoking, and who a request comes from.
- `server_log`: the server's numbered change log.
- `push`, `pull`, `audit_upload`: the server's side of a device's push, pull and audit upload.
- `node`: a node's enrolment, outbox, cursor, pulled pages, status and wipe.
- `conflicts`: values that lost a concurrent edit.
- `bulk`: many rows in one statement.
"""
