"""Standalone session clusters, local or remote, through the JobManager's REST API."""
