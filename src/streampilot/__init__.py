"""streampilot: develop, deploy, run, watch and heal Apache Flink streaming applications."""

__version__ = "0.1.0"
