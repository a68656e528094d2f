"""Use cases: lifecycle operations, applications, clusters and the observe/decide loops."""
