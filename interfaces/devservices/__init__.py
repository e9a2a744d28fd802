"""Development services on one machine, without Docker: a Kafka broker (KRaft), SeaweedFS (S3
with Object Lock) and PostgreSQL, each started on free loopback ports as a plain process.

``vigil services up|down`` (``stack``) runs them for a developer; the integration tests start
the very same classes (``tests/services/fixtures.py``). ``base.ManagedProcess`` is the process
underneath.
"""
