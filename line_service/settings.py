"""Adapter: service settings from the environment (prefix CARPOOL_), built in main only."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from line_service.abuse.code_guesses import GuessLimits
from line_service.abuse.request_rates import RequestRates

EMBEDDED = "embedded"


class Settings(BaseSettings):
    """Every knob of the service; see README for what each one does."""

    model_config = SettingsConfigDict(env_prefix="CARPOOL_", extra="ignore", frozen=True)

    lines_file: Path = Path("config/lines.yaml")
    campaigns_file: Path | None = None  # incentive campaigns; none: each line's compensation
    cache_dir: Path = Path("var/cache")  # the lines file's parsed form (a faster restart)
    database_url: str = "sqlite:///var/carpool.sqlite3"
    mqtt_url: str = EMBEDDED
    embedded_mqtt_port: int = Field(default=1884, ge=1, le=65535)
    mqtt_client_id: str = "carpool-dispatcher"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    http_max_body_bytes: int = Field(default=64 * 1024, ge=1024)  # larger bodies: 413
    sms_provider: Literal["console", "twilio"] = "console"
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_from: str = ""
    twilio_api_base: str = "https://api.twilio.com"
    public_url: str = "http://127.0.0.1:8000"
    api_tokens: SecretStr = SecretStr("")  # "token:role,…" or JSON {"token": "role"}
    phone_hash_salt: SecretStr = SecretStr("")
    sms_rate_limit_count: int = Field(default=10, ge=1)
    sms_rate_limit_window_seconds: float = Field(default=600.0, gt=0)
    phone_retention_days: int = Field(default=30, ge=1)  # clear numbers erased after (RGPD)
    sign_in_code_seconds: float = Field(default=300.0, gt=0)  # a texted sign-in code lives
    sign_in_attempts: int = Field(default=5, ge=1)  # wrong codes before it is closed
    sign_in_resend_seconds: float = Field(default=60.0, ge=0)  # between two codes to a number
    sign_in_codes_per_hour: int = Field(default=5, ge=1)  # codes to one number an hour
    account_token_days: float = Field(default=30.0, gt=0)  # a rider's or driver's token lives
    device_rate_per_second: float = Field(default=5.0, gt=0)  # each device's messages, average
    device_burst: int = Field(default=20, ge=1)  # … and at once; beyond: dropped, alerted once
    device_flood_quiet_seconds: float = Field(default=10.0, gt=0)  # no drop this long: calm
    code_guess_identity_budget: int = Field(default=5, ge=1)  # wrong codes per identity …
    code_guess_line_alarm: int = Field(default=10, ge=1)  # … per line: alarm, failed ones refused
    code_guess_line_budget: int = Field(default=20, ge=1)  # … per line: codes no longer checked
    code_guess_window_seconds: float = Field(default=86_400.0, gt=0)  # … over this window
    request_rate_per_identity: int = Field(default=4, ge=1)  # new remote requests per phone …
    request_rate_per_address: int = Field(default=20, ge=1)  # … and per HTTP client address
    request_rate_window_seconds: float = Field(default=900.0, gt=0)  # … over this window
    trusted_proxies: str = ""  # addresses/CIDRs whose X-Forwarded-For is believed
    lease_refresh_seconds: float = Field(default=30.0, gt=0)
    ignore_service_hours: bool = False
    rpc_url: str = ""  # the registry's base (…/v3.4 is added); "" = journeys queued, not sent
    rpc_access_key: str = ""
    rpc_secret_key: SecretStr = SecretStr("")
    rpc_send_delay_seconds: float = Field(default=600.0, ge=0, le=12 * 3600)  # after arrival
    rpc_poll_seconds: float = Field(default=30.0, gt=0)
    trip_link_hours: float = Field(default=12.0, gt=0, le=24)  # TRAJET <code> after a trip
    storage_refuse_seconds: float = Field(default=5.0, gt=0)
    cluster: bool = False  # many processes, one owner per line (PostgreSQL only; OPERATIONS.md)
    advertise_url: str = ""  # where peers forward to this process ("": from HTTP_HOST/PORT)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url_shape(cls, value: str) -> str:
        if value != EMBEDDED and not value.startswith("mqtt://"):
            raise ValueError("CARPOOL_MQTT_URL must be 'embedded' or mqtt://[user:pass@]host:port")
        return value

    @model_validator(mode="after")
    def _cluster_needs_postgresql(self) -> Settings:
        if self.cluster and not self.database_url.startswith("postgresql"):
            raise ValueError(
                "CARPOOL_CLUSTER=true needs a PostgreSQL CARPOOL_DATABASE_URL (the processes "
                "share its advisory locks); SQLite serves one process only"
            )
        return self

    @field_validator("advertise_url")
    @classmethod
    def _advertise_url_shape(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("CARPOOL_ADVERTISE_URL must be http://host:port or https://…")
        return value.rstrip("/")

    @property
    def peer_url(self) -> str:
        """Where the other processes of a cluster reach this one's HTTP side: the
        CARPOOL_ADVERTISE_URL, or this host and port (a wildcard host reads as loopback)."""
        if self.advertise_url:
            return self.advertise_url
        host = self.http_host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.http_port}"

    @model_validator(mode="after")
    def _twilio_needs_secrets(self) -> Settings:
        if self.sms_provider == "twilio":
            missing = [
                f"CARPOOL_{name.upper()}"
                for name, value in (
                    ("twilio_account_sid", self.twilio_account_sid),
                    ("twilio_auth_token", self.twilio_auth_token.get_secret_value()),
                    ("twilio_from", self.twilio_from),
                    ("phone_hash_salt", self.phone_hash_salt.get_secret_value()),
                )
                if not value.strip()
            ]
            if missing:
                raise ValueError(f"CARPOOL_SMS_PROVIDER=twilio needs {', '.join(missing)}")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_shape(cls, value: str) -> str:
        for part in filter(None, (item.strip() for item in value.split(","))):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError as exc:
                raise ValueError(f"CARPOOL_TRUSTED_PROXIES: {part!r} is no address") from exc
        return value

    @model_validator(mode="after")
    def _guess_alarm_below_budget(self) -> Settings:
        if self.code_guess_line_alarm > self.code_guess_line_budget:
            raise ValueError("CARPOOL_CODE_GUESS_LINE_ALARM must not pass the line budget")
        return self

    @property
    def guess_limits(self) -> GuessLimits:
        """The wrong-code budgets (docs/RELIABILITY.md)."""
        return GuessLimits(
            identity_budget=self.code_guess_identity_budget,
            line_alarm=self.code_guess_line_alarm,
            line_budget=self.code_guess_line_budget,
            window=timedelta(seconds=self.code_guess_window_seconds),
        )

    @property
    def request_rates(self) -> RequestRates:
        """New remote ride requests allowed per identity and per address."""
        return RequestRates(
            per_identity=self.request_rate_per_identity,
            per_address=self.request_rate_per_address,
            window=timedelta(seconds=self.request_rate_window_seconds),
        )

    @property
    def proxies(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """The trusted proxies' networks (empty: the socket's peer is the client)."""
        return tuple(
            ipaddress.ip_network(part, strict=False)
            for part in filter(None, (item.strip() for item in self.trusted_proxies.split(",")))
        )

    @model_validator(mode="after")
    def _rpc_needs_keys(self) -> Settings:
        if self.rpc_url.strip() and not (
            self.rpc_access_key.strip() and self.rpc_secret_key.get_secret_value().strip()
        ):
            raise ValueError(
                "CARPOOL_RPC_URL needs CARPOOL_RPC_ACCESS_KEY and CARPOOL_RPC_SECRET_KEY"
            )
        return self

    @property
    def lease_refresh(self) -> timedelta:
        """How often lit signs get their lease renewed."""
        return timedelta(seconds=self.lease_refresh_seconds)

    @property
    def broker_url(self) -> str:
        """The broker to connect to, the embedded one resolved to its address."""
        if self.mqtt_url == EMBEDDED:
            return f"mqtt://127.0.0.1:{self.embedded_mqtt_port}"
        return self.mqtt_url
