"""Adapters to Apache Flink: REST client, Flink homes, the local cluster and job launching."""
