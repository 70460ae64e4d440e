"""Broker URLs: ``mqtt://[user:pass@]host:port`` or ``mqtts://…`` (TLS)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from gridedge.contracts.catalog import BrokerEndpoint


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    keepalive_s: int = 30

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.tls:
            return False
        ctx = ssl.create_default_context(cafile=self.ca_file)
        return ctx

    def endpoint(self) -> BrokerEndpoint:
        return BrokerEndpoint(
            url=self.url,
            username=self.username,
            password=self.password,
            ca_file=self.ca_file,
            keepalive_s=self.keepalive_s,
        )


def parse_broker_url(url: str, *, ca_file: str | None = None) -> BrokerAddress:
    """Parse a broker URL; raises ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"broker url {url!r}: scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError(f"broker url {url!r}: host is missing")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ValueError(f"broker url {url!r}: port is not a number in 1..65535") from exc
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ca_file=ca_file,
    )


def from_endpoint(ep: BrokerEndpoint) -> BrokerAddress:
    addr = parse_broker_url(ep.url, ca_file=ep.ca_file)
    return BrokerAddress(
        host=addr.host,
        port=addr.port,
        tls=addr.tls,
        username=ep.username or addr.username,
        password=ep.password or addr.password,
        ca_file=ep.ca_file,
        keepalive_s=ep.keepalive_s,
    )
