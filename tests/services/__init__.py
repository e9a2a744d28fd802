"""Real services for the integration tests (Kafka, SeaweedFS S3, PostgreSQL), started by the
project itself on loopback. See ``base.ManagedProcess``."""
