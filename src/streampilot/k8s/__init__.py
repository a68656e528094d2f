"""Adapters to Kubernetes: the API client (kubernetes_asyncio) and list+watch caches."""
