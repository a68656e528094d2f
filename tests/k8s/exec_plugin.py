"""A client-go credential plugin for the Kubernetes API emulator: prints an ExecCredential with a
short-lived token from the emulator (Kubernetes docs, "client-go credential plugins": the plugin writes
``{"apiVersion", "kind": "ExecCredential", "status": {"token", "expirationTimestamp"}}`` to stdout).

Usage (as a kubeconfig ``users[].user.exec``): python exec_plugin.py <emulator URL>
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import sys
import urllib.request


def main() -> None:
    url = sys.argv[1].rstrip("/") + "/test/issue-token"
    context = ssl._create_unverified_context()
    with urllib.request.urlopen(url, timeout=5, context=context) as resp:
        issued = json.load(resp)
    # Whole seconds, rounded down: never later than the token's real expiry.
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(issued["expires_in_s"]))
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {"token": issued["token"], "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    print(json.dumps(credential))


if __name__ == "__main__":
    main()
