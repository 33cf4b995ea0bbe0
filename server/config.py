"""One settings object, read from ``YUNBANG_*`` environment variables.

Every setting has an embedded default (SQLite file and local data directory under ``./var``,
in-process socket.io manager), so ``yunbang serve`` runs with nothing else installed.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from server.logs import FORMATS as LOG_FORMATS

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_SERVICE_HOURS = "mon-fri 09:00-17:00"
MB = 1024 * 1024


class SettingsError(ValueError):
    """A ``YUNBANG_*`` variable has a value we cannot use."""


@dataclass(frozen=True)
class ServiceHours:
    """服务时间 — which weekdays and which hours a centre takes tickets live.

    ``always`` means a 24×7 centre. ``mon-fri 09:00-17:00`` is the default.
    Several spans are separated by commas: ``mon-fri 09:00-12:00,mon-fri 13:30-17:00``.
    """

    spans: tuple[tuple[frozenset[int], time, time], ...] = ()
    always: bool = False

    @classmethod
    def parse(cls, text: str) -> ServiceHours:
        text = text.strip().lower()
        if text in ("always", "24x7", "24/7"):
            return cls(always=True)
        spans = []
        for part in text.split(","):
            part = part.strip()
            try:
                days_text, hours_text = part.split()
                days = _parse_days(days_text)
                start_text, end_text = hours_text.split("-")
                start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
            except ValueError as exc:
                raise SettingsError(
                    f"YUNBANG_SERVICE_HOURS: cannot read {part!r} "
                    "(expected e.g. 'mon-fri 09:00-17:00' or 'always')"
                ) from exc
            if end <= start:
                raise SettingsError(f"YUNBANG_SERVICE_HOURS: {part!r} ends before it starts")
            spans.append((days, start, end))
        if not spans:
            raise SettingsError("YUNBANG_SERVICE_HOURS is empty")
        return cls(spans=tuple(spans))


def _parse_days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for chunk in text.split("+"):
        if "-" in chunk:
            first, last = chunk.split("-")
            a, b = WEEKDAYS.index(first), WEEKDAYS.index(last)
            if b < a:
                raise ValueError(chunk)
            days.update(range(a, b + 1))
        else:
            days.add(WEEKDAYS.index(chunk))
    return frozenset(days)


@dataclass(frozen=True)
class QueueRules:
    """Thresholds the queue and the supervisors' alerts run on."""

    wait_alert_minutes: float = 15
    yellow_waiting: int = 10
    red_waiting: int = 20
    yellow_wait_minutes: float = 10
    red_wait_minutes: float = 20
    no_show_after_recalls: int = 2
    default_service_minutes: float = 8
    service_hours: ServiceHours = field(default_factory=lambda: ServiceHours.parse(DEFAULT_SERVICE_HOURS))
    holidays: frozenset[date] = frozenset()
    timezone: str = "Asia/Shanghai"
    # 预约 (server/domain/appointments.py): slots of so many minutes within service hours, so
    # many bookings per slot and queue, up to so many days ahead
    appointment_slot_minutes: int = 30
    appointments_per_slot: int = 3
    appointment_days_ahead: int = 7
    # 督办 ledger (server/domain/ledger.py, docs/ledger.md): a follow-up item is due so many hours
    # after it is raised (a bad rating's rectification sooner); once overdue and unanswered it
    # goes to the department's supervisors, and so many hours later to the centre's head
    ledger_deadline_hours: float = 72
    rectify_deadline_hours: float = 48
    ledger_escalate_hours: float = 24


@dataclass(frozen=True)
class ConsultationRules:
    """Expert invitations: how long one waits for an answer, how many experts a case takes."""

    invitation_ttl_seconds: float = 120
    max_experts: int = 4


@dataclass(frozen=True)
class DocumentRules:
    """Limits and processing of uploaded documents.

    Unfinished uploads hold disk in the staging folder, so a case may have at most
    ``max_open_uploads_per_case`` of them at once, declaring at most ``max_staged_bytes_per_case``
    between them.
    """

    max_file_bytes: int = 20 * MB
    max_files_per_case: int = 50
    max_staged_bytes_per_case: int = 3 * max_file_bytes
    max_open_uploads_per_case: int = 5
    max_pixels: int = 40_000_000
    long_side: int = 4096
    viewing_side: int = 2560
    thumbnail_side: int = 320
    watermark: str = "仅供“{item}”办理使用 {date}"
    upload_ttl_hours: float = 24
    chunk_bytes: int = MB


@dataclass(frozen=True)
class ChatRules:
    """How fast one person may write in one call's chat: ``burst`` messages within
    ``burst_seconds``, and ``per_minute`` within any 60 seconds (``chat_rate_limited`` past that)."""

    burst: int = 5
    burst_seconds: float = 2
    per_minute: int = 60


@dataclass(frozen=True)
class LoginPolicy:
    """How password guessing is slowed down (docs/security.md, "Logging in").

    - an account from one address: ``max_failures`` attempts that fail in a row, then that pair
      waits ``lockout_seconds`` (the account stays open from every other address);
    - one address, whatever the usernames: ``address_max_failures`` failures within
      ``window_seconds``, then the address waits ``lockout_seconds``;
    - an account from anywhere: past ``account_slowdown_after`` failures within the window,
      addresses the account never logged in from must space their attempts (2, 4, 8 … up to
      ``account_max_delay_seconds`` apart); its owner's known addresses are not slowed.

    ``require_two_factor`` (``YUNBANG_REQUIRE_2FA``): clerks, supervisors, administrators and
    auditors must use a second factor (TOTP); until they have enrolled, their sessions may only
    enrol (docs/security.md, "Second factor").
    """

    max_failures: int = 5
    lockout_seconds: float = 300
    address_max_failures: int = 30
    window_seconds: float = 900
    account_slowdown_after: int = 10
    account_max_delay_seconds: float = 60
    token_ttl_hours: float = 12
    require_two_factor: bool = False
    # 群众/企业 sign in with a one-time code texted to their phone (server/domain/residents.py):
    # a code lives ``code_ttl_seconds`` and takes ``code_max_attempts`` wrong tries; a number
    # gets one every ``code_resend_seconds``, ``codes_per_number_hour`` an hour; an address
    # asks for ``codes_per_address_hour`` an hour, whatever the numbers.
    code_ttl_seconds: float = 300
    code_max_attempts: int = 5
    code_resend_seconds: float = 60
    codes_per_number_hour: int = 5
    codes_per_address_hour: int = 20


NOTIFY_PROVIDERS = {"sms": ("outbox", "webhook"), "staff": ("outbox", "webhook", "dingtalk")}


@dataclass(frozen=True)
class NotifyRules:
    """Where messages go (docs/operations.md, "Notifications"): texts to residents' phones
    (``sms``) and to staff (``staff``), each through a provider — ``outbox`` (kept and shown to
    administrators; the demo's), ``webhook`` (a signed JSON POST to an SMS gateway or any
    receiver) or, for staff, ``dingtalk`` (a DingTalk / 浙政钉 group robot, signed). A message
    that cannot be delivered is tried again after ``retry_seconds``, doubling up to
    ``retry_max_seconds``, ``max_attempts`` times in all."""

    sms: str = "outbox"
    staff: str = "outbox"
    webhook_url: str = ""
    webhook_secret: str = ""
    dingtalk_url: str = ""
    dingtalk_secret: str = ""
    max_attempts: int = 8
    retry_seconds: float = 10
    retry_max_seconds: float = 3600
    timeout_seconds: float = 10
    # Alerts that reach people: which alerts also go by SMS to the responsible supervisors'
    # mobiles (``red`` warnings only, ``all``, or ``none``: the staff robot only), and every how
    # many minutes an unacknowledged red warning is sent again (0: never)
    alert_sms: str = "red"
    alert_renotify_minutes: float = 10

    def provider(self, channel: str) -> str:
        return self.sms if channel == "sms" else self.staff


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str = ""
    redis_channel: str = "yunbang"
    secret_key: str = ""
    data_key: str = ""
    retention_days: float = 0
    login: LoginPolicy = field(default_factory=LoginPolicy)
    s3_endpoint: str = ""
    s3_public_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "yunbang"
    s3_secure: bool = False
    turn_urls: tuple[str, ...] = ()
    stun_urls: tuple[str, ...] = ()
    turn_secret: str = ""
    turn_ttl_seconds: int = 3600
    ice_relay_roles: tuple[str, ...] = ()
    media_addresses: tuple[str, ...] = ()
    media_announce: str = ""
    media_ports: tuple[int, int] | None = None
    monitor_interval_seconds: float = 20
    web_dist: Path = Path("web-client/dist")
    web_client_dir: Path = Path(__file__).resolve().parent.parent / "web-client"
    trusted_proxies: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    public_url: str = ""  # where residents open the app, for links the server texts by itself
    hsts: str = "auto"
    dev_pages: bool = False
    check_responses: bool = False  # validate every JSON answer against its route's model (the tests)
    log_format: str = "auto"
    call_grace_seconds: float = 60
    metrics_token: str = ""  # /metrics: docs/operations.md "Metrics"
    metrics_listen: tuple[str, int] | None = None
    queue: QueueRules = field(default_factory=QueueRules)
    documents: DocumentRules = field(default_factory=DocumentRules)
    consultations: ConsultationRules = field(default_factory=ConsultationRules)
    chat: ChatRules = field(default_factory=ChatRules)
    notify: NotifyRules = field(default_factory=NotifyRules)

    @property
    def link_origin(self) -> str:
        """The address written into links the server texts on its own (certificate reminders):
        ``YUNBANG_PUBLIC_URL``, else the first allowed origin, else this node's own address."""
        if self.public_url:
            return self.public_url
        if self.allowed_origins:
            return self.allowed_origins[0]
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'yunbang.db').resolve()}"

    def with_changes(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Each setting's default is its dataclass field's (``Settings.port``, ``QueueRules.…``),
        written there only; README.md's settings table names every variable read here."""
        env = os.environ if env is None else env
        Q, D, L, C, K, N = QueueRules, DocumentRules, LoginPolicy, ChatRules, ConsultationRules, NotifyRules

        def get(name: str, default: str = "") -> str:
            return env.get(f"YUNBANG_{name}", default).strip()

        def number(name: str, default: float, kind: type = float) -> float:
            raw = get(name)
            if not raw:
                return default
            try:
                return float(kind(raw))
            except ValueError as exc:
                raise SettingsError(f"YUNBANG_{name}={raw!r} is not a number") from exc

        def flag(name: str, default: bool) -> bool:
            raw = get(name, "true" if default else "false").lower()
            if raw in ("1", "true", "yes", "on"):
                return True
            if raw in ("0", "false", "no", "off", ""):
                return False
            raise SettingsError(f"YUNBANG_{name}={raw!r}: expected true or false")

        def csv(name: str) -> tuple[str, ...]:
            return tuple(p.strip() for p in get(name).split(",") if p.strip())

        try:
            holidays = frozenset(date.fromisoformat(d) for d in csv("HOLIDAYS"))
        except ValueError as exc:
            raise SettingsError("YUNBANG_HOLIDAYS: dates as YYYY-MM-DD, comma separated") from exc
        rules = QueueRules(
            wait_alert_minutes=number("WAIT_ALERT_MINUTES", Q.wait_alert_minutes),
            yellow_waiting=int(number("YELLOW_WAITING", Q.yellow_waiting, int)),
            red_waiting=int(number("RED_WAITING", Q.red_waiting, int)),
            yellow_wait_minutes=number("YELLOW_WAIT_MINUTES", Q.yellow_wait_minutes),
            red_wait_minutes=number("RED_WAIT_MINUTES", Q.red_wait_minutes),
            no_show_after_recalls=int(number("NO_SHOW_AFTER_RECALLS", Q.no_show_after_recalls, int)),
            default_service_minutes=number("DEFAULT_SERVICE_MINUTES", Q.default_service_minutes),
            service_hours=ServiceHours.parse(get("SERVICE_HOURS", DEFAULT_SERVICE_HOURS)),
            holidays=holidays,
            timezone=get("TIMEZONE", Q.timezone),
        )
        if rules.yellow_waiting > rules.red_waiting or rules.yellow_wait_minutes > rules.red_wait_minutes:
            raise SettingsError("yellow thresholds must not exceed red thresholds")
        max_upload_mb = number("MAX_UPLOAD_MB", D.max_file_bytes / MB)
        documents = DocumentRules(
            max_file_bytes=int(max_upload_mb * MB),
            max_files_per_case=int(number("MAX_FILES_PER_CASE", D.max_files_per_case, int)),
            max_staged_bytes_per_case=int(number("MAX_STAGED_MB_PER_CASE", 3 * max_upload_mb) * MB),
            max_open_uploads_per_case=int(number("MAX_OPEN_UPLOADS_PER_CASE", D.max_open_uploads_per_case, int)),
            max_pixels=int(number("MAX_IMAGE_PIXELS", D.max_pixels, int)),
            long_side=int(number("IMAGE_LONG_SIDE", D.long_side, int)),
            viewing_side=int(number("IMAGE_VIEWING_SIDE", D.viewing_side, int)),
            watermark=get("WATERMARK", D.watermark),
            upload_ttl_hours=number("UPLOAD_TTL_HOURS", D.upload_ttl_hours),
        )
        if documents.max_staged_bytes_per_case < documents.max_file_bytes:
            raise SettingsError("YUNBANG_MAX_STAGED_MB_PER_CASE must be at least YUNBANG_MAX_UPLOAD_MB")
        if documents.max_open_uploads_per_case < 1:
            raise SettingsError("YUNBANG_MAX_OPEN_UPLOADS_PER_CASE must be at least 1")
        return cls(
            host=get("HOST", cls.host),
            port=int(number("PORT", cls.port, int)),
            data_dir=Path(get("DATA_DIR", str(cls.data_dir))),
            database_url=get("DATABASE_URL"),
            redis_url=get("REDIS_URL"),
            redis_channel=get("REDIS_CHANNEL", cls.redis_channel),
            secret_key=get("SECRET_KEY"),
            data_key=get("DATA_KEY"),
            retention_days=number("RETENTION_DAYS", cls.retention_days),
            login=LoginPolicy(
                max_failures=int(number("LOGIN_MAX_FAILURES", L.max_failures, int)),
                lockout_seconds=number("LOGIN_LOCKOUT_SECONDS", L.lockout_seconds),
                address_max_failures=int(number("LOGIN_MAX_FAILURES_PER_ADDRESS", L.address_max_failures, int)),
                window_seconds=number("LOGIN_WINDOW_SECONDS", L.window_seconds),
                account_slowdown_after=int(number("LOGIN_ACCOUNT_SLOWDOWN_AFTER", L.account_slowdown_after, int)),
                account_max_delay_seconds=number("LOGIN_ACCOUNT_MAX_DELAY_SECONDS", L.account_max_delay_seconds),
                token_ttl_hours=number("TOKEN_TTL_HOURS", L.token_ttl_hours),
                require_two_factor=flag("REQUIRE_2FA", L.require_two_factor),
                code_ttl_seconds=number("SMS_CODE_TTL_SECONDS", L.code_ttl_seconds),
                code_max_attempts=int(number("SMS_CODE_MAX_ATTEMPTS", L.code_max_attempts, int)),
                code_resend_seconds=number("SMS_CODE_RESEND_SECONDS", L.code_resend_seconds),
                codes_per_number_hour=int(number("SMS_CODES_PER_NUMBER_HOUR", L.codes_per_number_hour, int)),
                codes_per_address_hour=int(number("SMS_CODES_PER_ADDRESS_HOUR", L.codes_per_address_hour, int)),
            ),
            s3_endpoint=get("S3_ENDPOINT"),
            s3_public_endpoint=get("S3_PUBLIC_ENDPOINT"),
            s3_access_key=get("S3_ACCESS_KEY"),
            s3_secret_key=get("S3_SECRET_KEY"),
            s3_bucket=_bucket(get("S3_BUCKET", cls.s3_bucket)),
            s3_secure=flag("S3_SECURE", cls.s3_secure),
            turn_urls=csv("TURN_URLS"),
            stun_urls=csv("STUN_URLS"),
            turn_secret=get("TURN_SECRET"),
            turn_ttl_seconds=int(number("TURN_TTL_SECONDS", cls.turn_ttl_seconds, int)),
            ice_relay_roles=_relay_roles(csv("ICE_RELAY_ROLES"), turn=bool(csv("TURN_URLS") and get("TURN_SECRET"))),
            **_media_network(csv("MEDIA_ADDRESSES"), get("MEDIA_ANNOUNCE"), get("MEDIA_PORTS")),
            monitor_interval_seconds=number("MONITOR_INTERVAL_SECONDS", cls.monitor_interval_seconds),
            web_dist=Path(get("WEB_DIST", str(cls.web_dist))),
            trusted_proxies=csv("TRUSTED_PROXIES"),
            allowed_origins=tuple(_origin(o) for o in csv("ALLOWED_ORIGINS")),
            public_url=_origin(get("PUBLIC_URL"), "PUBLIC_URL") if get("PUBLIC_URL") else "",
            hsts=_choice("HSTS", get("HSTS", cls.hsts).lower(), ("auto", "always", "off")),
            dev_pages=flag("DEV_PAGES", cls.dev_pages),
            check_responses=flag("CHECK_RESPONSES", cls.check_responses),
            log_format=_choice("LOG_FORMAT", (get("LOG_FORMAT") or cls.log_format).lower(), LOG_FORMATS),
            call_grace_seconds=number("CALL_GRACE_SECONDS", cls.call_grace_seconds),
            **_metrics(get("METRICS_TOKEN"), get("METRICS_LISTEN")),
            queue=rules,
            documents=documents,
            consultations=ConsultationRules(
                invitation_ttl_seconds=number("INVITATION_TTL_SECONDS", K.invitation_ttl_seconds),
                max_experts=int(number("MAX_EXPERTS_PER_CASE", K.max_experts, int)),
            ),
            chat=ChatRules(
                burst=int(number("CHAT_BURST", C.burst, int)),
                burst_seconds=number("CHAT_BURST_SECONDS", C.burst_seconds),
                per_minute=int(number("CHAT_PER_MINUTE", C.per_minute, int)),
            ),
            notify=_notify(NotifyRules(
                sms=get("NOTIFY_SMS", N.sms).lower(),
                staff=get("NOTIFY_STAFF", N.staff).lower(),
                webhook_url=get("NOTIFY_WEBHOOK_URL"),
                webhook_secret=get("NOTIFY_WEBHOOK_SECRET"),
                dingtalk_url=get("NOTIFY_DINGTALK_URL"),
                dingtalk_secret=get("NOTIFY_DINGTALK_SECRET"),
                max_attempts=int(number("NOTIFY_MAX_ATTEMPTS", N.max_attempts, int)),
                retry_seconds=number("NOTIFY_RETRY_SECONDS", N.retry_seconds),
                retry_max_seconds=number("NOTIFY_RETRY_MAX_SECONDS", N.retry_max_seconds),
                alert_sms=_choice("ALERT_SMS", get("ALERT_SMS", N.alert_sms).lower(), ("red", "all", "none")),
                alert_renotify_minutes=number("ALERT_RENOTIFY_MINUTES", N.alert_renotify_minutes),
            )),
        )

    def ensure_data_dir(self) -> Path:
        """The data directory, owner-only (0700) whatever the umask: it holds the database, the
        signing key and residents' documents. An existing directory is narrowed if we own it."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = self.data_dir.stat().st_mode & 0o777
        if mode != 0o700:
            try:
                self.data_dir.chmod(0o700)
            except PermissionError:
                logging.getLogger("yunbang").warning(
                    "data dir %s is mode %o and not ours to narrow to 0700", self.data_dir, mode)
        return self.data_dir

    def resolved_secret_key(self) -> str:
        """The token signing key: from the environment, or one generated once per data dir.

        Generated keys are kept in ``<data_dir>/secret_key`` (mode 0600) so a restart keeps
        every issued token valid; nothing secret ever lives in the repository.
        """
        if self.secret_key:
            return self.secret_key
        return self._generated("secret_key", lambda: secrets.token_urlsafe(48))

    def resolved_data_key(self) -> bytes:
        """The key that encrypts residents' ID and phone numbers at rest (32 bytes, AES-256-GCM):
        ``YUNBANG_DATA_KEY`` (base64), or one generated once into ``<data_dir>/data_key`` (0600).
        Losing it loses those numbers: back it up apart from the database (docs/security.md)."""
        text = self.data_key or self._generated("data_key", lambda: base64.b64encode(secrets.token_bytes(32)).decode())
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except ValueError as exc:
            raise SettingsError("YUNBANG_DATA_KEY must be base64") from exc
        if len(key) != 32:
            raise SettingsError("YUNBANG_DATA_KEY must be 32 bytes (base64 of 32 random bytes)")
        return key

    def _generated(self, name: str, make: Callable[[], str]) -> str:
        path = self.data_dir / name
        if path.exists():
            return path.read_text().strip()
        self.ensure_data_dir()
        value = make()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value


def _origin(value: str, name: str = "ALLOWED_ORIGINS") -> str:
    """``https://host[:port]`` as browsers send it in ``Origin`` (lower case, no path)."""
    parts = urlsplit(value.strip().lower())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
        raise SettingsError(
            f"YUNBANG_{name}: {value!r} is not an origin like https://yunbang.example.gov.cn")
    return f"{parts.scheme}://{parts.netloc}"


#: Roles whose browsers make calls, for ``YUNBANG_ICE_RELAY_ROLES``.
CALL_ROLES = ("worker", "clerk", "expert")
#: First path segments the app (and the proxy in front of it) uses: a bucket of that name could not
#: be reached at ``/<bucket>/`` on the app's host (docs/documents.md, "Behind the proxy").
RESERVED_PATHS = frozenset({"api", "app", "socket.io", "dev", "healthz", "metrics", "static"})


def _relay_roles(values: tuple[str, ...], *, turn: bool) -> tuple[str, ...]:
    """Roles whose browsers send media only through TURN (``iceTransportPolicy: "relay"``)."""
    roles = CALL_ROLES if "all" in values else values
    unknown = [r for r in roles if r not in CALL_ROLES]
    if unknown:
        raise SettingsError(
            f"YUNBANG_ICE_RELAY_ROLES: {', '.join(unknown)} not one of {', '.join(CALL_ROLES)} or all")
    if roles and not turn:
        raise SettingsError("YUNBANG_ICE_RELAY_ROLES needs TURN: set YUNBANG_TURN_URLS and YUNBANG_TURN_SECRET")
    return tuple(roles)


def _media_network(addresses: tuple[str, ...], announce: str, ports: str) -> dict[str, Any]:
    """YUNBANG_MEDIA_ADDRESSES (where the relay binds), _ANNOUNCE (the address it tells clients,
    behind 1:1 NAT) and _PORTS (``first-last``, the UDP ports it binds): docs/operations.md
    "Media addresses"."""
    bound = tuple(_address("MEDIA_ADDRESSES", a) for a in addresses)
    wildcard = [a for a in bound if ipaddress.ip_address(a).is_unspecified]
    public = _address("MEDIA_ANNOUNCE", announce) if announce else ""
    if public:
        if len(bound) != 1 or ipaddress.ip_address(bound[0]).version != ipaddress.ip_address(public).version:
            raise SettingsError("YUNBANG_MEDIA_ANNOUNCE needs YUNBANG_MEDIA_ADDRESSES to name the one address "
                                "(of the same IP version, 0.0.0.0 for all) that the announced address reaches")
        if ipaddress.ip_address(public).is_unspecified:
            raise SettingsError("YUNBANG_MEDIA_ANNOUNCE: a client cannot reach 0.0.0.0; name the public address")
    elif wildcard:
        raise SettingsError(f"YUNBANG_MEDIA_ADDRESSES: {wildcard[0]} binds every address but is none a client "
                            "can reach: set YUNBANG_MEDIA_ANNOUNCE to the address clients use")
    port_range = None
    if ports:
        found = re.fullmatch(r"\s*(\d{1,5})\s*-\s*(\d{1,5})\s*", ports)
        first, last = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
        if not found or not 1024 <= first <= last <= 65535:
            raise SettingsError(f"YUNBANG_MEDIA_PORTS={ports!r}: a UDP port range first-last within 1024-65535, "
                                "e.g. 40000-40999")
        port_range = (first, last)
    return {"media_addresses": bound, "media_announce": public, "media_ports": port_range}


def _metrics(token: str, listen: str) -> dict[str, Any]:
    """YUNBANG_METRICS_TOKEN (the bearer token /metrics asks for) and _LISTEN (``host:port``, a
    listener of its own): docs/operations.md "Metrics"."""
    if token and (len(token) < 16 or not token.isprintable() or " " in token):
        raise SettingsError("YUNBANG_METRICS_TOKEN: at least 16 printable characters, no spaces "
                            "(openssl rand -hex 24)")
    address = None
    if listen:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise SettingsError(f"YUNBANG_METRICS_LISTEN={listen!r}: host:port, e.g. 10.0.0.5:9464")
        address = (_address("METRICS_LISTEN", host.strip("[]")), int(port))
    return {"metrics_token": token, "metrics_listen": address}


def _address(name: str, value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise SettingsError(f"YUNBANG_{name}: {value!r} is not an IP address") from exc


def _bucket(name: str) -> str:
    """An S3 bucket name (3–63 of a-z 0-9 . -) that no path of the app's host already uses."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name):
        raise SettingsError(f"YUNBANG_S3_BUCKET={name!r}: 3–63 lower-case letters, digits, dots and hyphens")
    if name in RESERVED_PATHS:
        raise SettingsError(
            f"YUNBANG_S3_BUCKET={name!r}: the app's host already uses /{name}/; choose another bucket name")
    return name


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SettingsError(f"YUNBANG_{name}={value!r}: one of {', '.join(choices)}")
    return value


def _notify(rules: NotifyRules) -> NotifyRules:
    """A provider chosen must have what it needs: a provider that cannot send would keep every
    one-time code and alert in the queue, failing, unseen."""
    for channel, choices in NOTIFY_PROVIDERS.items():
        _choice(f"NOTIFY_{channel.upper()}", rules.provider(channel), choices)
    chosen = {rules.sms, rules.staff}
    if "webhook" in chosen:
        if not rules.webhook_url.startswith(("http://", "https://")):
            raise SettingsError("YUNBANG_NOTIFY_WEBHOOK_URL: an http(s) URL, for the webhook provider")
        if len(rules.webhook_secret) < 16:
            raise SettingsError("YUNBANG_NOTIFY_WEBHOOK_SECRET: at least 16 characters, to sign what is sent")
    if "dingtalk" in chosen:
        if not rules.dingtalk_url.startswith(("http://", "https://")):
            raise SettingsError("YUNBANG_NOTIFY_DINGTALK_URL: the robot's webhook URL (with its access_token)")
        if not rules.dingtalk_secret:
            raise SettingsError("YUNBANG_NOTIFY_DINGTALK_SECRET: the robot's signing secret (加签, SEC…)")
    if rules.max_attempts < 1 or rules.retry_seconds <= 0 or rules.retry_max_seconds < rules.retry_seconds:
        raise SettingsError("YUNBANG_NOTIFY_MAX_ATTEMPTS ≥ 1 and 0 < YUNBANG_NOTIFY_RETRY_SECONDS ≤ _RETRY_MAX_SECONDS")
    return rules
