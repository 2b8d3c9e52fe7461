"""Minimal SSE servers doing sseserver's workload, one per stack, for `make bench`.

Each serves `GET /api/sse?message=...` with the same events and bytes as sseserver's demo
(or anthropic) provider: `meta`, one `message` per token, `usage`, `done`, every event with
an id `<stream>:<index>`, so the load generator verifies them exactly as it verifies
sseserver. They have none of sseserver's features (no event log, no resume, no disconnect
cancel, no send deadline): they are the floor a feature-complete server is compared with.
"""
