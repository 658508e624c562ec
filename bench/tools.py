"""The machine side: install nginx and wrk when missing, plan which CPU runs what, free ports."""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
from dataclasses import dataclass

# Debian/Ubuntu package that provides each command the benchmark needs.
PACKAGES = {"nginx": "nginx-light", "wrk": "wrk", "cc": "gcc"}
NGINX_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


class ToolsMissing(RuntimeError):
    """nginx, wrk or cc is not installed and could not be installed here."""


def find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    if name == "nginx":
        return next((p for p in NGINX_PATHS if os.access(p, os.X_OK)), None)
    return None


def ensure_tools(log=print) -> dict[str, str]:
    """Paths of nginx, wrk and cc, installing the missing ones with apt-get (root only)."""
    missing = [name for name in PACKAGES if not find_tool(name)]
    if missing:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            wanted = " ".join(PACKAGES[name] for name in missing)
            raise ToolsMissing(
                f"{', '.join(missing)} not installed and cannot install them here "
                f"(needs root and apt-get): install {wanted}"
            )
        _apt_install(missing, log)
    paths = {name: find_tool(name) for name in PACKAGES}
    still = [name for name, path in paths.items() if not path]
    if still:
        raise ToolsMissing(f"{', '.join(still)} still not found after installing")
    return paths  # type: ignore[return-value]


def _apt_install(commands: list[str], log) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")

    def apt(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(args, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise ToolsMissing(f"{' '.join(args)} failed: {done.stderr.strip()[-500:]}")
        return done

    apt("apt-get", "update", "-qq")
    packages = []
    for name in commands:
        package = PACKAGES[name]
        # Newer Debian releases dropped the nginx-light flavour; plain nginx serves as well.
        policy = apt("apt-cache", "policy", package).stdout if name == "nginx" else ""
        if name == "nginx" and ("Candidate:" not in policy or "Candidate: (none)" in policy):
            package = "nginx"
        packages.append(package)
    log(f"installing {' '.join(packages)} with apt-get (provides {', '.join(commands)})")
    apt("apt-get", "install", "-y", "-qq", *packages)


def raise_open_files_limit() -> int:
    """Raise the soft limit of open files to the hard limit; children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class CpuPlan:
    """Which CPUs the gateway gets and which the load side (upstreams + load generators) gets."""

    gateway: tuple[int, ...]
    load: tuple[int, ...]

    @property
    def pinned(self) -> bool:
        return bool(self.gateway) and bool(self.load)

    def gateway_prefix(self) -> list[str]:
        if not self.pinned or not shutil.which("taskset"):
            return []
        return ["taskset", "-c", ",".join(map(str, self.gateway))]

    def describe(self) -> str:
        if not self.pinned:
            return "not pinned (one CPU available: gateway, upstream and load share it)"
        return (
            f"gateway on CPU {','.join(map(str, self.gateway))}; "
            f"nginx, wrk and slowload on CPU {','.join(map(str, self.load))}"
        )


def load_average() -> float:
    """1-minute load average: other work on the machine skews every number here."""
    with open("/proc/loadavg") as loadavg:
        return float(loadavg.read().split()[0])


def plan_cpus(gateway_cpus: str | None = None) -> CpuPlan:
    """Gateway on the first allowed CPU (or `gateway_cpus`), everything else on the rest."""
    allowed = sorted(os.sched_getaffinity(0))
    if gateway_cpus:
        gateway = tuple(int(c) for c in gateway_cpus.split(","))
    elif len(allowed) >= 2:
        gateway = (allowed[0],)
    else:
        return CpuPlan((), ())
    load = tuple(c for c in allowed if c not in gateway)
    return CpuPlan(gateway, load) if load else CpuPlan((), ())


def pin_self_to_load_side(plan: CpuPlan) -> None:
    """Pin this process (and so every child but the gateway) to the load CPUs."""
    if plan.pinned:
        os.sched_setaffinity(0, plan.load)


def pin_redis_to_load_side(plan: CpuPlan, url: str) -> str:
    """The Redis the key-pool scenarios use is another machine's service in production: here it
    runs with the load side, not on the gateway's CPU (every thread of it). What was done, for
    the log; a Redis of another user or machine is left as it is."""
    if not plan.pinned:
        return "Redis not pinned (one CPU)"
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            pid = int(client.info("server")["process_id"])
        finally:
            client.close()
        for task in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(task), plan.load)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        return f"Redis not pinned ({type(exc).__name__})"
    except Exception as exc:  # redis.RedisError: no Redis there
        return f"Redis not pinned ({type(exc).__name__})"
    return f"Redis (pid {pid}) on CPU {','.join(map(str, plan.load))}"


def versions(paths: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, path in paths.items():
        flag = {"nginx": "-v", "wrk": "--version"}.get(name, "--version")
        done = subprocess.run([path, flag], capture_output=True, text=True)
        text = (done.stdout + done.stderr).strip().splitlines()
        out[name] = text[0] if text else "?"
    return out
