"""The steps every connection check starts with: DNS (bounded in time), TCP, and for https a
verified TLS handshake, each failure saying which step failed and what to check."""

from __future__ import annotations

import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlsplit

from prophecy_jupyter.kinds.base import CheckFailed

TIMEOUT = 10.0
DNS_TIMEOUT = 10.0
# getaddrinfo has no timeout of its own: lookups run here and are waited for at most DNS_TIMEOUT.
_RESOLVER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="prophecy-dns")


def reach(url: str, ca_bundle: str | None, steps: list[str]) -> None:
    """Resolve, connect and (for https) complete a verified TLS handshake."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    lookup = _RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        addresses = lookup.result(timeout=DNS_TIMEOUT)
    except FutureTimeout:
        raise CheckFailed(
            "dns", f"The name {host} did not resolve within {DNS_TIMEOUT:.0f} s. Is the DNS server reachable?"
        ) from None
    except socket.gaierror as exc:
        raise CheckFailed(
            "dns", f"The name {host} does not resolve ({exc.strerror}). Check the host name."
        ) from None
    steps.append(f"dns: {host} resolves to {addresses[0][4][0]}")
    try:
        connection = socket.create_connection((host, port), timeout=TIMEOUT)
    except OSError as exc:
        raise CheckFailed(
            "tcp",
            f"Nothing answers on {host}:{port} ({exc.strerror or exc}). Is the server up, and is the port "
            "right?",
        ) from None
    steps.append(f"tcp: connected to {host}:{port}")
    with connection:
        if parts.scheme != "https":
            return
        context = ssl.create_default_context(cafile=ca_bundle)
        try:
            with context.wrap_socket(connection, server_hostname=host):
                pass
        except ssl.SSLCertVerificationError as exc:
            raise CheckFailed(
                "tls",
                f"The TLS certificate of {host} is not trusted ({exc.verify_message}). "
                "Give the fabric a CA bundle, or fix the certificate.",
            ) from None
        except (ssl.SSLError, OSError) as exc:
            raise CheckFailed("tls", f"The TLS handshake with {host} failed ({exc}).") from None
    steps.append("tls: certificate verified")
