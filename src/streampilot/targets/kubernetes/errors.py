"""What a Kubernetes API call's failure means for the observer (no dependency on the client library,
so the platform imports these without loading it).

``KubeUnavailable`` (no usable answer: refused, timeout, 5xx, 429) is never evidence; ``KubeNotFound``
(HTTP 404 for the object) is positive absence; ``KubeGone`` (410) means a watch must relist.
"""

from __future__ import annotations


class KubeError(Exception):
    pass


class KubeConfigError(KubeError):
    """The connection settings themselves are unusable (missing or broken kubeconfig)."""


class KubeUnavailable(KubeError):
    pass


class KubeNotFound(KubeError):
    pass


class KubeGone(KubeError):
    pass


class KubeRejected(KubeError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
