"""The local real stack: Apache Kafka (KRaft) and Neo4j as plain JVM processes.

    python deploy/local/stack.py up [--only kafka|neo4j]
    python deploy/local/stack.py down [--only kafka|neo4j]
    python deploy/local/stack.py status | logs

Jars come from Maven Central (`mvn dependency:copy-dependencies`, cached in ~/.m2 and under
.stack/lib). `up` is idempotent: a running service that answers is reused. `down` stops what the
pid files name. Ports: LINEAGE_STACK_KAFKA_PORT (9092), LINEAGE_STACK_BOLT_PORT (7687), and a
second Kafka listener with SASL on LINEAGE_STACK_KAFKA_SASL_PORT (Kafka port + 2000) where
user `lineage` (password LINEAGE_STACK_KAFKA_SASL_PASSWORD, `lineage-secret`) may log in with
PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, and a third listener with TLS on
LINEAGE_STACK_KAFKA_SSL_PORT (Kafka port + 3000) that requires a client certificate (mTLS).
Bolt accepts TLS as well as plain connections (`bolt+ssc://`). `openssl` makes the certificates
on first start: a self-signed one for Bolt in .stack/certificates/bolt, and a throwaway CA with
a broker and a client certificate it signed in .stack/certificates/kafka (all for 127.0.0.1
and localhost).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
START_TIMEOUT_S = float(os.environ.get("LINEAGE_STACK_START_TIMEOUT", "180"))


class StackError(Exception):
    """A service cannot be installed, started or stopped; the message says what to do."""


@dataclass(frozen=True)
class Config:
    root: Path
    kafka_port: int
    controller_port: int
    sasl_port: int
    sasl_password: str
    ssl_port: int
    bolt_port: int
    password: str
    kafka_heap: str
    neo4j_heap: str
    neo4j_pagecache: str

    @classmethod
    def from_env(cls) -> Config:
        kafka_port = int(os.environ.get("LINEAGE_STACK_KAFKA_PORT", "9092"))
        return cls(
            root=Path(os.environ.get("LINEAGE_STACK_DIR", REPO / ".stack")),
            kafka_port=kafka_port,
            controller_port=int(
                os.environ.get("LINEAGE_STACK_KAFKA_CONTROLLER_PORT", str(kafka_port + 1000))
            ),
            sasl_port=int(os.environ.get("LINEAGE_STACK_KAFKA_SASL_PORT", str(kafka_port + 2000))),
            sasl_password=os.environ.get("LINEAGE_STACK_KAFKA_SASL_PASSWORD", "lineage-secret"),
            ssl_port=int(os.environ.get("LINEAGE_STACK_KAFKA_SSL_PORT", str(kafka_port + 3000))),
            bolt_port=int(os.environ.get("LINEAGE_STACK_BOLT_PORT", "7687")),
            password=os.environ.get("LINEAGE_NEO4J_PASSWORD", "lineage-stream"),
            kafka_heap=os.environ.get("LINEAGE_STACK_KAFKA_HEAP", "512m"),
            neo4j_heap=os.environ.get("LINEAGE_STACK_NEO4J_HEAP", "768m"),
            neo4j_pagecache=os.environ.get("LINEAGE_STACK_NEO4J_PAGECACHE", "256m"),
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ssl_port}"

    @property
    def kafka_certificate_dir(self) -> Path:
        return self.root / "certificates" / "kafka"

    @property
    def ssl_cafile(self) -> Path:
        """The CA that signed the broker's and the client's certificate."""
        return self.kafka_certificate_dir / "ca.crt"

    @property
    def ssl_client_certfile(self) -> Path:
        return self.kafka_certificate_dir / "client.crt"

    @property
    def ssl_client_keyfile(self) -> Path:
        return self.kafka_certificate_dir / "client.key"

    @property
    def bolt_uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def bolt_tls_uri(self) -> str:
        """TLS with the stack's self-signed certificate, which the driver accepts unverified."""
        return f"bolt+ssc://127.0.0.1:{self.bolt_port}"


def say(text: str) -> None:
    print(f"[stack] {text}", flush=True)


def require_tools() -> None:
    missing = [tool for tool in ("java", "javac", "mvn") if shutil.which(tool) is None]
    if missing:
        raise StackError(
            f"{', '.join(missing)} not found. Install a JDK 17+ and Maven, e.g. "
            "`apt-get update && apt-get install -y openjdk-17-jdk-headless maven`."
        )


def _digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _run_with_progress(command: list[str], log: Path, what: str) -> None:
    """Run a slow command, printing a line every 10 s so nobody wonders whether it hangs."""
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        while process.poll() is None:
            time.sleep(0.5)
            elapsed = time.monotonic() - started
            if int(elapsed) % 10 == 0 and elapsed > 9.5:
                say(f"{what}: still working ({elapsed:.0f} s)")
                time.sleep(0.6)
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise StackError(f"{what} failed (exit {process.returncode}); see {log}:\n{tail}")


def install_jars(config: Config, service: str) -> Path:
    """Copy the service's jars from Maven Central into .stack/lib/<service> once per pom."""
    pom = HERE / service / "pom.xml"
    lib = config.root / "lib" / service
    stamp = lib / f".pom-{_digest(pom)}"
    if stamp.exists():
        return lib
    shutil.rmtree(lib, ignore_errors=True)
    lib.mkdir(parents=True)
    say(f"downloading {service} jars from Maven Central (first run only)")
    _run_with_progress(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={lib}",
        ],
        config.root / "logs" / f"mvn-{service}.log",
        f"mvn {service}",
    )
    stamp.touch()
    return lib


def compile_neo4j_launcher(config: Config, lib: Path) -> Path:
    source = HERE / "neo4j" / "Neo4jServer.java"
    classes = config.root / "classes" / f"neo4j-{_digest(source)}"
    if (classes / "Neo4jServer.class").exists():
        return classes
    classes.mkdir(parents=True, exist_ok=True)
    _run_with_progress(
        ["javac", "-d", str(classes), "-cp", f"{lib}/*", str(source)],
        config.root / "logs" / "javac-neo4j.log",
        "javac Neo4jServer",
    )
    return classes


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pid_file(config: Config, service: str) -> Path:
    return config.root / f"{service}.pid"


def _alive_pid(config: Config, service: str) -> int | None:
    path = _pid_file(config, service)
    if not path.exists():
        return None
    pid = int(path.read_text().strip() or 0)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        path.unlink(missing_ok=True)
        return None
    return pid


def kafka_answers(config: Config, timeout: float = 3.0) -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        metadata = AdminClient(
            {"bootstrap.servers": config.bootstrap, "socket.timeout.ms": 2000}
        ).list_topics(timeout=timeout)
    except Exception:
        return False
    return bool(metadata.brokers)


SCRAM_USER = "lineage"


def ensure_scram_user(config: Config) -> None:
    """Create (or reset) the SCRAM user of the SASL listener; credentials live in the cluster
    metadata, so this works on a stack formatted before the listener existed."""
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    admin = AdminClient({"bootstrap.servers": config.bootstrap})
    # The broker refuses two alterations of one user in a single request.
    for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
        upsert = UserScramCredentialUpsertion(
            SCRAM_USER, ScramCredentialInfo(mechanism, 4096), config.sasl_password.encode()
        )
        admin.alter_user_scram_credentials([upsert], request_timeout=30)[SCRAM_USER].result()


def neo4j_answers(config: Config) -> bool:
    from neo4j import GraphDatabase
    from neo4j.exceptions import AuthError, Neo4jError, ServiceUnavailable

    if _alive_pid(config, "neo4j") and not _neo4j_ready_file(config).exists():
        return False  # ours, still setting the password: a login now would count as a failure
    try:
        with GraphDatabase.driver(
            config.bolt_uri, auth=("neo4j", config.password), connection_timeout=3
        ) as driver:
            records, _, _ = driver.execute_query("RETURN 1 AS ok")
            return bool(records and records[0]["ok"] == 1)
    except (AuthError, ServiceUnavailable, Neo4jError, OSError):
        return False


def _jaas_quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def kafka_cluster_id() -> str:
    """A random cluster id as Kafka writes them (URL-safe base64 of a UUID), never starting with
    `-`: the storage tool would read one of those, 1 in 64, as an option and refuse to format."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _kafka_command(config: Config) -> list[str]:
    lib = install_jars(config, "kafka")
    certificates = ensure_kafka_certificates(config)
    data = config.root / "kafka"
    properties = config.root / "kafka.properties"
    properties.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{config.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{config.kafka_port},"
                f"CONTROLLER://127.0.0.1:{config.controller_port},"
                f"SASL_PLAINTEXT://127.0.0.1:{config.sasl_port},"
                f"SSL://127.0.0.1:{config.ssl_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{config.kafka_port},"
                f"SASL_PLAINTEXT://127.0.0.1:{config.sasl_port},"
                f"SSL://127.0.0.1:{config.ssl_port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
                "SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL",
                "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                "listener.name.sasl_plaintext.plain.sasl.jaas.config="
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f"user_{SCRAM_USER}={_jaas_quoted(config.sasl_password)};",
                *(
                    f"listener.name.sasl_plaintext.{mechanism}.sasl.jaas.config="
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                    for mechanism in ("scram-sha-256", "scram-sha-512")
                ),
                # PEM files, no keystore tooling: the key and chain in one file, the CA alone.
                "listener.name.ssl.ssl.keystore.type=PEM",
                f"listener.name.ssl.ssl.keystore.location={certificates / BROKER_KEYSTORE}",
                "listener.name.ssl.ssl.truststore.type=PEM",
                f"listener.name.ssl.ssl.truststore.location={config.ssl_cafile}",
                "listener.name.ssl.ssl.client.auth=required",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={data}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                # Real Spark events reach megabytes: 16 MB events must fit, with headroom.
                "message.max.bytes=33554432",
                "replica.fetch.max.bytes=33554432",
                "socket.request.max.bytes=104857600",
                "auto.create.topics.enable=true",
                "log.retention.hours=168",
                "",
            ]
        )
    )
    java = [
        "java",
        f"-Xmx{config.kafka_heap}",
        "-Xms128m",
        f"-Dlog4j2.configurationFile={HERE / 'kafka' / 'log4j2.properties'}",
        "-cp",
        f"{lib}/*",
    ]
    if not (data / "meta.properties").exists():
        cluster_id = kafka_cluster_id()
        _run_with_progress(
            [*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)],
            config.root / "logs" / "kafka-format.log",
            "format Kafka storage",
        )
    return [*java, "kafka.Kafka", str(properties)]


def bolt_certificate_dir(config: Config) -> Path:
    return config.root / "certificates" / "bolt"


LOCAL_NAMES = "subjectAltName=IP:127.0.0.1,DNS:localhost"
BROKER_KEYSTORE = "broker-keystore.pem"


def make_certificate(
    config: Config,
    folder: Path,
    name: str,
    subject: str,
    extensions: list[str],
    issuer: str | None = None,
) -> None:
    """A new RSA key <name>.key (unencrypted PKCS#8) and its certificate <name>.crt in folder,
    self-signed, or signed by the issuer's .crt and .key there."""
    if shutil.which("openssl") is None:
        raise StackError("openssl not found; install it (`apt-get install -y openssl`)")
    signer = (
        ["-CA", str(folder / f"{issuer}.crt"), "-CAkey", str(folder / f"{issuer}.key")]
        if issuer
        else []
    )
    _run_with_progress(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            f"/CN={subject}",
            *(argument for extension in extensions for argument in ("-addext", extension)),
            *signer,
            "-keyout",
            str(folder / f"{name}.key"),
            "-out",
            str(folder / f"{name}.crt"),
        ],
        config.root / "logs" / f"openssl-{folder.name}-{name}.log",
        f"make the certificate {subject!r}",
    )


def ensure_bolt_certificate(config: Config) -> Path:
    """A self-signed certificate for 127.0.0.1 and localhost, made once; returns its folder."""
    folder = bolt_certificate_dir(config)
    if (folder / "public.crt").exists() and (folder / "private.key").exists():
        return folder
    for sub in ("trusted", "revoked"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    make_certificate(config, folder, "bolt", "lineage-stream local Neo4j", [LOCAL_NAMES])
    # The names Neo4j's ssl policy is configured with below.
    (folder / "bolt.key").replace(folder / "private.key")
    (folder / "bolt.crt").replace(folder / "public.crt")
    return folder


def ensure_kafka_certificates(config: Config) -> Path:
    """A throwaway CA, and a broker and a client certificate it signed, made once; returns
    their folder. The keystore file holds the broker's key and certificate for the listener."""
    folder = config.kafka_certificate_dir
    if (folder / BROKER_KEYSTORE).exists():
        return folder
    # Part of a set from an interrupted start would not verify against a new CA: start over.
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ca = ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"]
    make_certificate(config, folder, "ca", "lineage-stream local Kafka CA", ca)
    leaf = ["basicConstraints=critical,CA:FALSE", LOCAL_NAMES]
    make_certificate(config, folder, "broker", "lineage-stream local Kafka", leaf, issuer="ca")
    make_certificate(config, folder, "client", "lineage-stream worker", leaf, issuer="ca")
    keystore = b"".join((folder / name).read_bytes() for name in ("broker.key", "broker.crt"))
    (folder / BROKER_KEYSTORE).write_bytes(keystore)
    return folder


def _neo4j_command(config: Config) -> list[str]:
    lib = install_jars(config, "neo4j")
    classes = compile_neo4j_launcher(config, lib)
    certificates = ensure_bolt_certificate(config)
    conf = config.root / "neo4j.conf"
    address = f"127.0.0.1:{config.bolt_port}"
    conf.write_text(
        "\n".join(
            [
                "server.bolt.enabled=true",
                f"server.bolt.listen_address={address}",
                f"server.bolt.advertised_address={address}",
                # TLS for clients that ask (bolt+ssc://), plain bolt:// for every other test.
                "server.bolt.tls_level=OPTIONAL",
                "dbms.ssl.policy.bolt.enabled=true",
                f"dbms.ssl.policy.bolt.base_directory={certificates}",
                "dbms.ssl.policy.bolt.private_key=private.key",
                "dbms.ssl.policy.bolt.public_certificate=public.crt",
                "dbms.ssl.policy.bolt.client_auth=NONE",
                "dbms.security.auth_enabled=true",
                f"server.memory.pagecache.size={config.neo4j_pagecache}",
                "db.tx_log.rotation.retention_policy=2 files",
                "",
            ]
        )
    )
    return [
        "java",
        f"-Xmx{config.neo4j_heap}",
        "-Xms256m",
        "-XX:+UseG1GC",
        "--add-opens=java.base/java.nio=ALL-UNNAMED",
        "--add-opens=java.base/java.io=ALL-UNNAMED",
        "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
        "--add-opens=java.base/java.lang=ALL-UNNAMED",
        "-cp",
        f"{classes}:{lib}/*",
        "Neo4jServer",
        str(config.root / "neo4j"),
        str(conf),
        str(_neo4j_ready_file(config)),
    ]


def _neo4j_ready_file(config: Config) -> Path:
    return config.root / "neo4j.ready"


@dataclass(frozen=True)
class Service:
    name: str
    port: Callable[[Config], int]
    answers: Callable[[Config], bool]
    command: Callable[[Config], list[str]]


SERVICES = {
    "kafka": Service("kafka", lambda c: c.kafka_port, kafka_answers, _kafka_command),
    "neo4j": Service("neo4j", lambda c: c.bolt_port, neo4j_answers, _neo4j_command),
}


def _log(config: Config, service: str) -> Path:
    return config.root / "logs" / f"{service}.log"


def start(config: Config, service: Service) -> bool:
    """Start the service unless it already answers; returns whether this call started it."""
    port = service.port(config)
    if _alive_pid(config, service.name) or _port_open(port):
        if _wait(config, service, None, deadline=time.monotonic() + 30):
            say(f"{service.name} already running on 127.0.0.1:{port}; reusing it")
            return False
        raise StackError(
            f"port {port} is taken but {service.name} does not answer there; stop whatever "
            f"holds it (`ss -ltnp | grep {port}`) or choose another port "
            f"(LINEAGE_STACK_{'KAFKA' if service.name == 'kafka' else 'BOLT'}_PORT)"
        )
    command = service.command(config)
    if service.name == "neo4j":
        _neo4j_ready_file(config).unlink(missing_ok=True)
    log = _log(config, service.name)
    env = {
        **os.environ,
        "LINEAGE_NEO4J_PASSWORD": config.password,
        "LINEAGE_NEO4J_PASSWORD_IS_SET": "1" if _password_marker(config).exists() else "0",
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=config.root,
        )
    _pid_file(config, service.name).write_text(str(process.pid))
    say(f"starting {service.name} (pid {process.pid}) on 127.0.0.1:{port}")
    if not _wait(config, service, process, deadline=time.monotonic() + START_TIMEOUT_S):
        stop(config, service.name)
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise StackError(
            f"{service.name} did not answer within {START_TIMEOUT_S:.0f} s; log {log}:\n{tail}"
        )
    if service.name == "neo4j":
        _password_marker(config).touch()
    return True


def _password_marker(config: Config) -> Path:
    digest = hashlib.sha256(config.password.encode()).hexdigest()[:16]
    # Inside the store it describes, so that a store deleted by hand takes its marker along.
    return config.root / "neo4j" / "data" / f".password-{digest}"


def _wait(
    config: Config, service: Service, process: subprocess.Popen[bytes] | None, deadline: float
) -> bool:
    started = time.monotonic()
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = "\n".join(
                _log(config, service.name).read_text(errors="replace").splitlines()[-25:]
            )
            raise StackError(
                f"{service.name} exited with {process.returncode} while starting:\n{tail}"
            )
        if _port_open(service.port(config)) and service.answers(config):
            say(f"{service.name} ready after {time.monotonic() - started:.1f} s")
            return True
        time.sleep(0.5)
    return False


def stop(config: Config, name: str, timeout: float = 30) -> bool:
    """Stop the process the pid file names; returns whether one was running."""
    pid = _alive_pid(config, name)
    if pid is None:
        return False
    say(f"stopping {name} (pid {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        say(f"{name} ignored SIGTERM for {timeout:.0f} s; killing it")
        os.killpg(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.1)
    _pid_file(config, name).unlink(missing_ok=True)
    port = SERVICES[name].port(config)
    deadline = time.monotonic() + 10
    while _port_open(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    return True


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as stopped.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def up(config: Config, only: list[str]) -> list[str]:
    """Start the named services; returns those this call started."""
    require_tools()
    for folder in ("logs", "lib", "classes"):
        (config.root / folder).mkdir(parents=True, exist_ok=True)
    started = [name for name in only if start(config, SERVICES[name])]
    if "kafka" in only:
        ensure_scram_user(config)
    say(f"Kafka  bootstrap {config.bootstrap}")
    say(f"Kafka  SASL_PLAINTEXT {config.sasl_bootstrap}  PLAIN/SCRAM user {SCRAM_USER}")
    say(
        f"Kafka  SSL {config.ssl_bootstrap}  client certificate required: CA {config.ssl_cafile}, "
        f"certificate {config.ssl_client_certfile}, key {config.ssl_client_keyfile}"
    )
    say(f"Neo4j  {config.bolt_uri}  user neo4j  password {config.password}")
    say(f"Neo4j  {config.bolt_tls_uri}  (TLS, self-signed certificate)")
    return started


def down(config: Config, only: list[str]) -> None:
    stopped = [name for name in only if stop(config, name)]
    say(f"stopped {', '.join(stopped)}" if stopped else "nothing of ours was running")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "logs"])
    parser.add_argument("--only", choices=sorted(SERVICES), action="append")
    args = parser.parse_args(argv)
    config = Config.from_env()
    only = args.only or list(SERVICES)
    try:
        if args.command == "up":
            up(config, only)
        elif args.command == "down":
            down(config, only)
        elif args.command == "status":
            for name in only:
                port = SERVICES[name].port(config)
                state = "up" if SERVICES[name].answers(config) else "down"
                print(f"{name:6} 127.0.0.1:{port}  {state}  pid {_alive_pid(config, name) or '-'}")
        else:
            for name in only:
                print(f"==> {_log(config, name)} <==")
                if _log(config, name).exists():
                    print(
                        "\n".join(_log(config, name).read_text(errors="replace").splitlines()[-40:])
                    )
    except StackError as exc:
        print(f"[stack] error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
