"""Static checks of the deployment files (no container engine here): the
compose file is valid for docker-compose, and it runs what the tests run —
the same nginx.conf, every name that file needs, the gateways' flags — and
the image is a slim Debian running as a non-root user with a health check."""

import os
import re
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "Tests", "Scale"))
from proxy_tests import GATEWAY_FLAGS  # noqa: E402

problems = []
subprocess.run(["docker-compose", "-f", os.path.join(HERE, "compose.yaml"), "config", "-q"], check=True)
with open(os.path.join(HERE, "compose.yaml")) as file:
    compose = yaml.safe_load(file)
with open(os.path.join(HERE, "nginx.conf")) as file:
    names = set(re.findall(r"\$\{(PLEXOR_[A-Z0-9_]+)\}", file.read()))
with open(os.path.join(HERE, "Dockerfile")) as file:
    dockerfile = file.read()

nginx = compose["services"]["nginx"]
if "./nginx.conf:/etc/plexor/nginx.conf.template:ro" not in nginx["volumes"]:
    problems.append("nginx does not run docker/nginx.conf")
if names - set(nginx["environment"]):
    problems.append(f"nginx's environment lacks {sorted(names - set(nginx['environment']))}")
for name in names:
    if f"$${name}" not in nginx["command"][-1]:
        problems.append(f"nginx's envsubst does not fill in {name}")
for service in ("gateway1", "gateway2", "gateway3"):
    command = compose["services"][service]["command"]
    flags = " ".join(GATEWAY_FLAGS)
    if flags not in " ".join(command):
        problems.append(f"{service} runs without the tests' flags ({flags})")
    if not compose["services"][service].get("environment", {}).get("PLEXOR_TRUSTED_PROXIES"):
        problems.append(f"{service} does not trust nginx's X-Forwarded-For (PLEXOR_TRUSTED_PROXIES)")
final = dockerfile[dockerfile.rindex("\nFROM "):]
status_port = re.search(r"PLEXOR_STATUS_PORT=(\d+)", final)
for n, service in enumerate(("gateway1", "gateway2", "gateway3"), start=1):
    if not status_port or nginx["environment"].get(f"PLEXOR_STATUS_{n}") != f"{service}:{status_port.group(1)}":
        problems.append(f"nginx's PLEXOR_STATUS_{n} is not {service}'s status port (the image's PLEXOR_STATUS_PORT)")
if "/dev/tcp/127.0.0.1/${PLEXOR_STATUS_PORT} " not in final.split("HEALTHCHECK", 1)[-1]:
    problems.append("the health check does not ask the status port (a full gateway would look unhealthy)")
if "FROM debian:bookworm-slim" not in final:
    problems.append("the image is not a slim Debian")
if not re.search(r"^USER (?!root)\S+", final, re.M):
    problems.append("the image runs as root")
if "HEALTHCHECK" not in final or "/readyz" not in final:
    problems.append("the image has no health check on /readyz")
installed = re.search(r"apt-get install -y --no-install-recommends ([^\\&]+)", final).group(1).split()
if set(installed) != {"libpq5", "libssl3", "libcurl4", "ca-certificates"}:
    problems.append(f"the image installs {installed}")

for problem in problems:
    print("docker/check.py:", problem, file=sys.stderr)
sys.exit(1 if problems else 0)
