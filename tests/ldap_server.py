"""A real OpenLDAP server (Debian's slapd) for the tests: its own folder, port and directory.

The directory: ``dc=example,dc=org`` with people under ``ou=people`` (uid, userPassword, mail) and
groups (groupOfNames) under ``ou=groups``. ``stop()`` / ``start()`` let a test take it away.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from streampilot.flink.local import free_port

SLAPD = "/usr/sbin/slapd"
BASE = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{BASE}"
ADMIN_PASSWORD = "directory-admin-pw"


def available() -> bool:
    return Path(SLAPD).exists() and shutil.which("ldapadd") is not None


@dataclass
class LdapServer:
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def configure(self) -> None:
        (self.root / "db").mkdir(parents=True, exist_ok=True)
        schemas = "\n".join(
            f"include /etc/ldap/schema/{name}.schema" for name in ("core", "cosine", "inetorgperson", "nis")
        )
        (self.root / "slapd.conf").write_text(
            f"""{schemas}
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {self.root}/slapd.pid
database mdb
maxsize 10485760
suffix "{BASE}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {self.root}/db
access to attrs=userPassword by self read by anonymous auth by * none
access to * by * read
"""
        )

    def start(self) -> LdapServer:
        if not (self.root / "slapd.conf").exists():
            self.configure()
        log = (self.root / "slapd.log").open("ab")
        self.proc = subprocess.Popen(
            [SLAPD, "-d", "0", "-f", str(self.root / "slapd.conf"), "-h", self.url + "/"], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["ldapsearch", "-x", "-H", self.url, "-b", "", "-s", "base", "-LLL"], capture_output=True, timeout=5
            )
            if probe.returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"slapd did not start: {(self.root / 'slapd.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def add(self, ldif: str) -> None:
        done = subprocess.run(
            ["ldapadd", "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD],
            input=ldif.encode(),
            capture_output=True,
            timeout=20,
        )
        assert done.returncode == 0, done.stderr.decode()

    def seed(self, people: dict[str, str], groups: dict[str, list[str]]) -> None:
        """People (uid -> password) and groups (cn -> member uids)."""
        entries = [
            f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example",
            f"dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people",
            f"dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups",
        ]
        for uid, password in people.items():
            entries.append(
                f"dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"
                f"mail: {uid}@example.org\nuserPassword: {password}"
            )
        for cn, members in groups.items():
            lines = "\n".join(f"member: uid={m},ou=people,{BASE}" for m in members)
            entries.append(f"dn: cn={cn},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {cn}\n{lines}")
        self.add("\n\n".join(entries) + "\n")
