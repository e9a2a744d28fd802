"""Real services for the integration tests, started by the project itself on loopback: Kafka,
SeaweedFS S3 and PostgreSQL come from ``interfaces.devservices`` (what ``vigil services up``
starts), loaded as pytest fixtures by ``fixtures``; the test-only ones (Prometheus, a TSA,
witnesses) live here."""
