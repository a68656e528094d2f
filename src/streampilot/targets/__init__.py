"""Where Flink jobs run, behind one port (port.py): standalone session clusters (standalone/),
Kubernetes through the Flink operator (kubernetes/), and a fake for service tests (fake.py)."""
