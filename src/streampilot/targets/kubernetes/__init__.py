"""Kubernetes targets through the Flink Kubernetes Operator: the API client and its errors (client.py,
errors.py), list+watch caches (watch.py), the observation merged from the operator's resources, the
JobManager Deployments and pods and Flink's REST API (observer.py), the lifecycle acting on the
resources (target.py), and the application and session kinds of target (kinds.py). The pure rules
for the resources live in domain/k8s.py.
"""
