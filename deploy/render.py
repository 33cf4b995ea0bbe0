"""deploy/nginx.conf from deploy/nginx.conf.template — the one nginx site of compose and the test.

``python -m deploy.render`` rewrites deploy/nginx.conf for docker-compose.yml (``COMPOSE``);
``python -m deploy.render --check`` fails when the file is not what the template gives.
tests/topology.py renders the same template with its own ports, certificate and paths.
Placeholders are ``{{name}}`` (nginx's own ``$variables`` stay as they are); a placeholder
without a value, or a value the template does not use, is an error rather than a broken site.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "nginx.conf.template"
TARGET = HERE / "nginx.conf"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class NginxSite:
    """What differs between the compose stack and the test's nginx."""

    app_servers: tuple[str, ...]
    object_server: str
    bucket: str
    https_listen: str
    http_listen: str
    certificate: str
    certificate_key: str
    access_log: str
    #: nginx before 1.25.1 turns HTTP/2 on with ``listen … http2`` (Debian 12 ships 1.22),
    #: later ones with ``http2 on;`` (the compose image, 1.27)
    http2: Literal["listen", "directive"] = "directive"


COMPOSE = NginxSite(
    app_servers=("app:8080",), object_server="minio:9000", bucket="yunbang",
    https_listen="443", http_listen="80",
    certificate="/etc/nginx/certs/fullchain.pem", certificate_key="/etc/nginx/certs/privkey.pem",
    access_log="/var/log/nginx/access.log",
)


class TemplateError(ValueError):
    pass


def render(site: NginxSite, template: str | None = None) -> str:
    text = TEMPLATE.read_text(encoding="utf-8") if template is None else template
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", site.bucket):
        raise TemplateError(f"bucket {site.bucket!r} is not an S3 bucket name")
    if not site.app_servers:
        raise TemplateError("at least one app server")
    values = {k: v for k, v in asdict(site).items() if k not in ("app_servers", "http2", "https_listen")}
    values["app_servers"] = "\n".join(f"    server {s};" for s in site.app_servers)
    values["https_listen"] = (f"listen {site.https_listen} ssl http2;" if site.http2 == "listen"
                              else f"listen {site.https_listen} ssl;\n    http2 on;")
    used = set(_PLACEHOLDER.findall(text))
    missing, unused = used - values.keys(), values.keys() - used
    if missing or unused:
        raise TemplateError(f"template placeholders without a value: {sorted(missing)}; "
                            f"values the template does not use: {sorted(unused)}")
    for name, value in values.items():
        if any(c in value for c in ";{}\n") and name not in ("app_servers", "https_listen"):
            raise TemplateError(f"{name}={value!r} would break the nginx syntax")
    body = _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
    return ("# GENERATED from deploy/nginx.conf.template by `python -m deploy.render`: edit the template.\n"
            + body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if deploy/nginx.conf is stale")
    args = parser.parse_args(argv)
    text = render(COMPOSE)
    if args.check:
        if TARGET.read_text(encoding="utf-8") != text:
            print("deploy/nginx.conf is not what deploy/nginx.conf.template gives: "
                  "run python -m deploy.render", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
