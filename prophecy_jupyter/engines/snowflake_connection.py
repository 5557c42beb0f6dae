"""A connection to a Snowflake account with one user's own credential, through
snowflake-connector-python (imported only when a connection is made): the connector's arguments
for each auth mode, and its failures as errors that say which fabric and what to do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from prophecy_jupyter.errors import AuthenticationError, EngineError, Invalid

Auth = Literal["password", "key-pair", "oauth", "pat"]
AUTHENTICATORS: dict[str, str] = {
    "password": "SNOWFLAKE",
    "key-pair": "SNOWFLAKE_JWT",
    "oauth": "OAUTH",
    "pat": "PROGRAMMATIC_ACCESS_TOKEN",
}
SECRETS: dict[str, str] = {
    "password": "password",
    "key-pair": "private key",
    "oauth": "OAuth token",
    "pat": "programmatic access token",
}
_PEM = re.compile(r"-----BEGIN ([A-Z ]*PRIVATE KEY)-----(.*?)-----END \1-----", re.S)
# The connector's error numbers for an account it could not reach.
_UNREACHABLE = {250001, 250003}


@dataclass(frozen=True)
class SnowflakeConnection:
    """Where a fabric's warehouse is and how its users log in (never a secret)."""

    account: str
    user: str
    auth: Auth = "password"
    role: str | None = None
    warehouse: str | None = None
    database: str | None = None
    schema: str | None = None
    host: str | None = None
    port: int | None = None
    protocol: Literal["https", "http"] = "https"
    login_timeout: float = 60.0
    network_timeout: float | None = None

    def connect_args(self, secret: str | None) -> dict[str, Any]:
        """The keyword arguments of ``snowflake.connector.connect`` (and Snowpark's builder) for
        this user; Invalid when the secret is missing or not the auth mode's kind."""
        if not secret:
            raise Invalid(f"No {SECRETS[self.auth]} is set for this fabric: set yours first.", "secret")
        args: dict[str, Any] = {
            "account": self.account,
            "user": self.user,
            "authenticator": AUTHENTICATORS[self.auth],
            "login_timeout": self.login_timeout,
            "protocol": self.protocol,
            "application": "prophecy-jupyter",
            "session_parameters": {"QUERY_TAG": "prophecy-jupyter"},
        }
        optional = {
            "role": self.role,
            "warehouse": self.warehouse,
            "database": self.database,
            "schema": self.schema,
            "host": self.host,
            "port": self.port,
            "network_timeout": self.network_timeout,
        }
        args.update({key: value for key, value in optional.items() if value is not None})
        if self.auth == "password":
            args["password"] = secret
        elif self.auth == "key-pair":
            args["private_key"] = private_key_der(secret)
        else:
            args["token"] = secret
        return args


def private_key_der(secret: str) -> bytes:
    """The user's PEM private key as the DER bytes the connector takes. An encrypted key carries
    its passphrase after its ``-----END ... PRIVATE KEY-----`` line. A key pasted into one line
    (a password field) is read as well."""
    from cryptography.hazmat.primitives import serialization

    found = _PEM.search(secret)
    if found is None:
        raise Invalid("The private key is not a PEM key (a PKCS#8 'BEGIN PRIVATE KEY' block).", "secret")
    label, body = found.group(1), found.group(2)
    if ":" not in body:  # no PEM headers: the base64 may be re-wrapped
        flat = re.sub(r"\s+", "", body)
        body = "\n" + "\n".join(flat[i : i + 64] for i in range(0, len(flat), 64)) + "\n"
    pem = f"-----BEGIN {label}-----{body}-----END {label}-----\n"
    passphrase = secret[found.end() :].strip()
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=passphrase.encode() or None)
    except TypeError:
        raise Invalid(
            "The private key is encrypted: give its passphrase on the line after its END line.", "secret"
        ) from None
    except ValueError:
        raise Invalid(
            "The private key could not be read (a wrong passphrase, or not a key).", "secret"
        ) from None
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def connect(connection: SnowflakeConnection, secret: str | None, fabric: str) -> Any:
    """A connector connection as the user, or the reason there is none."""
    import snowflake.connector
    from snowflake.connector.errors import DatabaseError, Error, OperationalError

    try:
        return snowflake.connector.connect(**connection.connect_args(secret))
    except (DatabaseError, OperationalError) as exc:
        raise login_error(exc, connection, fabric) from None
    except Error as exc:
        raise EngineError(f"Fabric '{fabric}': Snowflake refused the connection: {exc}") from None


def login_error(exc: Exception, connection: SnowflakeConnection, fabric: str) -> EngineError:
    """What a failed login means for the user: an account out of reach, or a refused credential."""
    errno = getattr(exc, "errno", None)
    where = f"{connection.protocol}://{connection.host}" if connection.host else connection.account
    if errno in _UNREACHABLE:
        return EngineError(
            f"Fabric '{fabric}': Snowflake account {where} did not answer within "
            f"{connection.login_timeout:.0f} s. Is the account identifier right, and is it reachable from "
            "here?"
        )
    return AuthenticationError(
        f"Fabric '{fabric}': Snowflake refused {connection.user}'s login with {connection.auth} "
        f"({SECRETS[connection.auth]}): {getattr(exc, 'msg', None) or exc}"
    )
