"""The transactional outbox: jobs written in the same transaction as the change they carry."""
