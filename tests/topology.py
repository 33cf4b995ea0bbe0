"""The production topology on loopback, as processes: nginx (TLS), coturn, the app, an S3 server.

One module for ``tests/test_production.py`` and ``bench/join.py --topology production``:

* a certificate authority and a certificate for ``127.0.0.1``/``localhost``, made here;
* ``moto`` as the S3 server (the MinIO of the compose stack; it does not check presigned
  signatures, so the test checks the signature against the ``Host`` that reached it itself);
* coturn (Debian's ``turnserver``) with ``deploy/turnserver.conf`` — the compose file's — plus
  what loopback needs: ``--listening-ip``/``--relay-ip`` 127.0.0.1, ``--allow-loopback-peers``
  (coturn refuses loopback peers before it reads any allow list) and ``--allowed-peer-ip``
  127.0.0.1 (the file denies 127.0.0.0/8 with the other private ranges), free ports, verbose log;
* the app (``yunbang serve``) on the given PostgreSQL and Redis, the S3 server, TURN with the
  same secret (``YUNBANG_TURN_SECRET``), the relay gathering on 127.0.0.1 only
  (``YUNBANG_MEDIA_ADDRESSES``) and the workers' browsers forced through TURN
  (``YUNBANG_ICE_RELAY_ROLES=worker``);
* nginx (Debian's) running ``deploy/nginx.conf.template`` rendered with this run's ports.

Everything listens on 127.0.0.1 and is stopped at the end; logs stay in ``workdir``.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import random
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deploy.render import NginxSite, render

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "web-client" / "dist"
TURNSERVER_CONF = ROOT / "deploy" / "turnserver.conf"
#: ``yunbang`` from this tree (``python -m server.cli``, with the tree first on the path), not
#: whichever checkout the environment's ``yunbang`` script was installed from
YUNBANG = [sys.executable, "-m", "server.cli"]
S3_KEY, S3_SECRET = "testing", "testing"
START_TIMEOUT_S = 30.0


class TopologyUnavailable(RuntimeError):
    """A program of the topology is not installed (``make prodstack`` installs them)."""


def missing_programs() -> list[str]:
    return [name for name in ("nginx", "turnserver") if shutil.which(name) is None
            and not Path(f"/usr/sbin/{name}").exists() and not Path(f"/usr/bin/{name}").exists()]


def _program(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None)
    if found is None:
        raise TopologyUnavailable(f"{name} is not installed: make prodstack (apt-get install nginx coturn)")
    return found


def _with_root(pythonpath: str) -> str:
    return os.pathsep.join([str(ROOT), *(p for p in pythonpath.split(os.pathsep) if p)])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Certificates:
    ca: Path
    certificate: Path  # the server's, then the CA's (a full chain)
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """An ``ssl`` context that trusts this run's CA only."""
        return ssl.create_default_context(cafile=str(self.ca))


def make_certificates(folder: Path) -> Certificates:
    """A CA and a certificate it signs for 127.0.0.1 and localhost, valid for a day."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yunbang test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = Certificates(folder / "ca.pem", folder / "fullchain.pem", folder / "privkey.pem")
    paths.ca.write_bytes(ca.public_bytes(pem))
    paths.certificate.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    paths.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths.key.chmod(0o600)
    return paths


# --------------------------------------------------------------------------- processes


@dataclass
class Processes:
    """Processes started for the topology, each logging to a file; stopped in reverse order."""

    folder: Path
    running: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "ab")
        try:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.folder,
                                    start_new_session=True)
        finally:
            log.close()
        self.running.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def check(self) -> None:
        for name, proc in self.running:
            if proc.poll() is not None:
                tail = "\n".join(self.log(name).splitlines()[-15:])
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop(self) -> None:
        for _, proc in reversed(self.running):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(self.running):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.running.clear()


async def _until(check: Callable[[], bool], what: str, processes: Processes,
                 timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        processes.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")
        await asyncio.sleep(0.1)


def _answers_http(url: str, context: ssl.SSLContext | None = None) -> Callable[[], bool]:
    import urllib.error
    import urllib.request

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as reply:
                return bool(reply.status < 500)
        except urllib.error.HTTPError as exc:
            return exc.code < 500
        except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
            return False

    return check


def _listens(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    return check


# --------------------------------------------------------------------------- the parts


@dataclass(frozen=True)
class Turn:
    port: int
    tls_port: int
    relay_ports: tuple[int, int]
    secret: str
    log: Path

    @property
    def urls(self) -> tuple[str, ...]:
        return (f"turn:127.0.0.1:{self.port}?transport=udp",)


def nginx_version() -> tuple[int, ...]:
    out = subprocess.run([_program("nginx"), "-v"], capture_output=True, text=True).stderr
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out)
    if not found:
        raise TopologyUnavailable(f"cannot tell nginx's version from {out!r}")
    return tuple(int(n) for n in found.groups())


def nginx_main_conf(site_file: Path, folder: Path) -> str:
    """The main context around the site (compose's nginx image has its own): this run's pid,
    logs and temp folders, workers as the user running the test."""
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(f"    {kind}_temp_path {folder / ('tmp-' + kind)};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"{user}worker_processes 1;\ndaemon off;\npid {folder / 'nginx.pid'};\n"
            f"error_log {folder / 'nginx-error.log'} info;\n"
            "events { worker_connections 512; }\n"
            f"http {{\n{temp}\n    default_type application/octet-stream;\n    include {site_file};\n}}\n")


@dataclass
class Topology:
    """The running topology: where browsers go, and what the servers wrote."""

    base: str  # https://127.0.0.1:<nginx port>
    app_base: str  # the app itself, behind nginx
    s3_endpoint: str
    bucket: str
    turn: Turn
    certificates: Certificates
    processes: Processes
    nginx_access_log: Path
    env: dict[str, str]

    def turn_log(self) -> str:
        return self.turn.log.read_text(errors="replace") if self.turn.log.exists() else ""

    def nginx_log(self) -> str:
        return self.nginx_access_log.read_text(errors="replace") if self.nginx_access_log.exists() else ""

    def http(self) -> aiohttp.ClientSession:
        """An HTTP client that reaches the app through nginx, trusting this run's CA only."""
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.certificates.client_context()))


@asynccontextmanager
async def production(database_url: str, redis_url: str, workdir: Path, *,
                     relay_roles: tuple[str, ...] = ("worker",)) -> AsyncIterator[Topology]:
    """Start the S3 server, coturn, the app and nginx; yield the topology; stop them all."""
    if missing := missing_programs():
        raise TopologyUnavailable(f"not installed: {', '.join(missing)} (make prodstack)")
    if not (DIST / "index.html").is_file():
        raise RuntimeError("web-client/dist is missing: run `make web`")
    workdir.mkdir(parents=True, exist_ok=True)
    certs = make_certificates(workdir)
    processes = Processes(workdir)
    try:
        https_port, http_port, app_port, s3_port, turn_port, turn_tls, alt_port, alt_tls = free_ports(8)
        relay_low = random.randrange(61000, 64000, 50)
        turn = Turn(turn_port, turn_tls, (relay_low, relay_low + 49), secrets.token_hex(24),
                    workdir / "coturn.log")
        bucket = f"yb-prod-{secrets.token_hex(4)}"

        processes.start("moto", [sys.executable, "-m", "moto.server", "-p", str(s3_port), "-H", "127.0.0.1"])
        processes.start("coturn", [
            _program("turnserver"), "-c", str(TURNSERVER_CONF),
            "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
            f"--listening-port={turn.port}", f"--tls-listening-port={turn.tls_port}",
            f"--alt-listening-port={alt_port}", f"--alt-tls-listening-port={alt_tls}",
            f"--min-port={turn.relay_ports[0]}", f"--max-port={turn.relay_ports[1]}",
            f"--static-auth-secret={turn.secret}", "--realm=yunbang.test",
            "--allow-loopback-peers", "--allowed-peer-ip=127.0.0.1",
            f"--cert={certs.certificate}", f"--pkey={certs.key}",
            f"--pidfile={workdir / 'coturn.pid'}", f"--userdb={workdir / 'turndb'}",
            "--log-file=stdout", "--verbose",
        ])
        base = f"https://127.0.0.1:{https_port}"
        env = {
            **os.environ,
            "YUNBANG_HOST": "127.0.0.1", "YUNBANG_PORT": str(app_port), "YUNBANG_DATA_DIR": str(workdir / "data"),
            "YUNBANG_DATABASE_URL": database_url, "YUNBANG_REDIS_URL": redis_url,
            "YUNBANG_REDIS_CHANNEL": f"yunbang-prod-{secrets.token_hex(4)}",
            "YUNBANG_SECRET_KEY": secrets.token_urlsafe(48),
            "YUNBANG_S3_ENDPOINT": f"127.0.0.1:{s3_port}", "YUNBANG_S3_PUBLIC_ENDPOINT": base,
            "YUNBANG_S3_ACCESS_KEY": S3_KEY, "YUNBANG_S3_SECRET_KEY": S3_SECRET, "YUNBANG_S3_BUCKET": bucket,
            "YUNBANG_TURN_URLS": ",".join(turn.urls), "YUNBANG_TURN_SECRET": turn.secret,
            "YUNBANG_ICE_RELAY_ROLES": ",".join(relay_roles), "YUNBANG_MEDIA_ADDRESSES": "127.0.0.1",
            "YUNBANG_TRUSTED_PROXIES": "127.0.0.1", "YUNBANG_SERVICE_HOURS": "always",
            "YUNBANG_WEB_DIST": str(DIST), "YUNBANG_MONITOR_INTERVAL_SECONDS": "3600",
            "YUNBANG_CHECK_RESPONSES": "true",
            "PYTHONPATH": _with_root(os.environ.get("PYTHONPATH", "")),
        }
        for name in ("YUNBANG_STUN_URLS", "YUNBANG_ALLOWED_ORIGINS", "YUNBANG_DEV_PAGES"):
            env.pop(name, None)
        await _until(_answers_http(f"http://127.0.0.1:{s3_port}/"), "the S3 server", processes)
        processes.start("app", [*YUNBANG, "serve"], env=env)

        site = NginxSite(
            app_servers=(f"127.0.0.1:{app_port}",), object_server=f"127.0.0.1:{s3_port}", bucket=bucket,
            https_listen=f"127.0.0.1:{https_port}", http_listen=f"127.0.0.1:{http_port}",
            certificate=str(certs.certificate), certificate_key=str(certs.key),
            access_log=str(workdir / "nginx-access.log"),
            http2="listen" if nginx_version() < (1, 25, 1) else "directive",
        )
        site_file = workdir / "site.conf"
        site_file.write_text(render(site))
        main_conf = workdir / "nginx.conf"
        main_conf.write_text(nginx_main_conf(site_file, workdir))
        tested = subprocess.run([_program("nginx"), "-t", "-q", "-p", str(workdir), "-c", str(main_conf),
                                 "-e", str(workdir / "nginx-error.log")], capture_output=True, text=True)
        if tested.returncode != 0:
            raise RuntimeError(f"nginx refuses the rendered site: {tested.stderr}")
        processes.start("nginx", [_program("nginx"), "-p", str(workdir), "-c", str(main_conf),
                                  "-e", str(workdir / "nginx-error.log")])

        await _until(_listens(turn.port), "coturn", processes)
        await _until(_answers_http(f"http://127.0.0.1:{app_port}/api/health"), "the app", processes, timeout=60)
        await _until(_answers_http(f"{base}/api/health", certs.client_context()), "nginx", processes)
        yield Topology(base=base, app_base=f"http://127.0.0.1:{app_port}", s3_endpoint=f"127.0.0.1:{s3_port}",
                       bucket=bucket, turn=turn, certificates=certs, processes=processes,
                       nginx_access_log=workdir / "nginx-access.log", env=env)
    finally:
        processes.stop()


async def fresh_database(pg_admin: str) -> tuple[str, Callable[[], object]]:
    """A new PostgreSQL database, migrated and demo-seeded by the ``yunbang`` CLI (the bench has
    no template to clone); returns its URL and a coroutine function that drops it."""
    import asyncpg

    name = f"yb_prod_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(pg_admin)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{pg_admin.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    env = {**os.environ, "YUNBANG_DATABASE_URL": url, "PYTHONPATH": _with_root(os.environ.get("PYTHONPATH", ""))}
    for step in (["migrate"], ["seed", "--demo"]):
        await asyncio.to_thread(subprocess.run, [*YUNBANG, *step], env=env, check=True, capture_output=True)

    async def drop() -> None:
        admin = await asyncpg.connect(pg_admin)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    return url, drop
