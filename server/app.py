"""create_app(settings): the one place where things are built and wired."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import socketio
from aiohttp import WSCloseCode, web

from server.api import (  # noqa: F401  (routes)
    accounts,
    appointments,
    bundles,
    catalog,
    certificates,
    checklists,
    documents,
    experts,
    ledger,
    network,
    notifications,
    openapi,
    reports,
    residents,
    rtc,
    supervision,
    tickets,
)
from server.api.base import ROUTES, client_ip, errors_middleware
from server.api.documents import serve_object
from server.auth import TokenSigner
from server.config import Settings
from server.db import Database
from server.domain.clock import Clock, SystemClock
from server.events import Event
from server.keys import (
    CALLS,
    DB,
    DOMAIN,
    METRICS,
    MONITOR,
    NOTIFY,
    PRESENCE,
    RETENTION,
    SETTINGS,
    SIO,
    STORE,
    TOKENS,
    UPLOADS,
)
from server.live import InvitationTimers, Monitor, QueuePositions, SocketSink
from server.metrics import Metrics, http_metrics, listener, scrape_handler
from server.notify import Dispatcher
from server.retention import Retention
from server.runtime import Domain
from server.uploading import DocumentUploads
from server.web_security import security_headers, socketio_origin_check
from server.weblog import echo_request_id, is_client_garbage, request_context, socketio_loggers
from signaling.calls import CallService
from signaling.namespace import LiveNamespace
from signaling.presence import LocalPresence
from signaling.relay.ice import MediaNetwork
from signaling.server import SocketServer
from signaling.tasks import Tasks
from uploads.service import Limits, UploadPipeline
from uploads.storage import LocalStore, ObjectStore, S3Store

log = logging.getLogger("yunbang")
socket_log = logging.getLogger("yunbang.socket")
OPEN_SOCKET = web.RequestKey("open_socket", web.WebSocketResponse)
STATIC = Path(__file__).parent / "static"


def router_path(path: str) -> str:
    """The path as aiohttp routes it: an ``{…_id}`` placeholder where a sibling route has a
    literal segment (``/api/bundles/{bundle_id}`` beside ``/api/bundles/report``) matches digits
    only, so another method on the literal path is 405, not the id route's 422."""
    parts = path.split("/")
    for n, part in enumerate(parts):
        if part.startswith("{") and part.endswith("_id}"):
            prefix = "/".join(parts[:n]) + "/"
            if any(r.path.startswith(prefix) and not r.path[len(prefix):].startswith("{") for r in ROUTES
                   if r.path != path and len(r.path) > len(prefix)):
                parts[n] = part[:-1] + r":\d+}"
    return "/".join(parts)


def create_app(settings: Settings, *, clock: Clock | None = None, run_monitor: bool = True) -> web.Application:
    """The app with its routes. Its services are built when it starts, by its cleanup contexts
    in order (the database, storage, the live side, documents, housekeeping), and closed in
    reverse when it stops: nothing is open or running before it starts or after it stops."""
    settings.ensure_data_dir()
    app = web.Application(middlewares=[request_context, http_metrics, errors_middleware], client_max_size=1024**2)
    app[SETTINGS] = settings
    app[TOKENS] = TokenSigner(settings.resolved_secret_key(), settings.login.token_ttl_hours)
    app.on_response_prepare.append(security_headers)
    app.on_response_prepare.append(echo_request_id)
    for r in ROUTES:
        app.router.add_route(r.method, router_path(r.path), r.handler)
    app.router.add_get("/api/objects/{key:.+}", serve_object)
    if settings.metrics_token:
        app.router.add_get("/metrics", scrape_handler(settings.metrics_token))
    app.router.add_get("/", index)
    if settings.dev_pages:
        add_dev_pages(app, settings)
    app.router.add_get("/app", to_web_client)
    app.router.add_get("/app/{path:.*}", web_client)
    attach_socketio(app)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(storage_ctx)
    app.cleanup_ctx.append(functools.partial(live_ctx, clock=clock or SystemClock()))
    app.cleanup_ctx.append(documents_ctx)
    app.cleanup_ctx.append(functools.partial(housekeeping_ctx, run_monitor=run_monitor))
    app.on_shutdown.append(disconnect_clients)
    return app


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    db = Database(app[SETTINGS].effective_database_url)
    app[DB] = db
    yield
    await db.dispose()


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    store = object_store(app[SETTINGS])
    await store.ensure_ready()
    app[STORE] = store
    yield
    await store.close()


async def live_ctx(app: web.Application, *, clock: Clock) -> AsyncIterator[None]:
    """The socket.io server and what answers and feeds it: the domain (whose events it
    delivers), calls and the media relay, presence, queue positions, invitation timers, and
    the metrics that count all of it."""
    settings = app[SETTINGS]
    sio = socket_server(settings)
    sink = SocketSink(sio)
    domain = Domain(app[DB], clock, settings, sink)
    positions = QueuePositions(domain, sio)
    calls = CallService(domain, sio, grace_seconds=settings.call_grace_seconds,
                        media_network=MediaNetwork(settings.media_addresses, settings.media_announce or None,
                                                   settings.media_ports))
    metrics = Metrics(domain, calls.relay)
    invitation_timers = InvitationTimers(domain)
    dispatcher = Dispatcher(domain)
    presence = LocalPresence(in_call=calls.in_call)
    namespace = LiveNamespace(domain, app[TOKENS], calls, presence, client_ip, observe=metrics.socket_event)
    sio.register_namespace(namespace)

    async def end_sessions(event: Event) -> None:
        if event.name == "session.revoked":
            await namespace.end_sessions(int(event.payload["user_id"]), list(event.payload["session_ids"]))

    sink.queue_observers.append(positions.touched)
    sink.observers.extend([calls.on_event, metrics.on_event, invitation_timers.on_event, dispatcher.on_event,
                           end_sessions])
    app[SIO], app[DOMAIN], app[CALLS], app[PRESENCE], app[METRICS] = sio, domain, calls, presence, metrics
    app[NOTIFY] = dispatcher
    yield
    await sio.close()  # no client is served any more: its handlers still running end here
    await namespace.close()
    await calls.shutdown()
    await invitation_timers.close()
    await dispatcher.close()
    await positions.close()
    await sio.close_manager()


async def documents_ctx(app: web.Application) -> AsyncIterator[None]:
    """Uploads (and the worker processes that read the images) and retention."""
    settings, domain, store = app[SETTINGS], app[DOMAIN], app[STORE]
    pipeline = UploadPipeline(store, settings.data_dir / "staging", Limits(
        max_file_bytes=settings.documents.max_file_bytes, max_pixels=settings.documents.max_pixels,
        long_side=settings.documents.long_side, viewing_side=settings.documents.viewing_side,
        thumbnail_side=settings.documents.thumbnail_side,
    ))
    app[UPLOADS] = DocumentUploads(domain, pipeline, store, processed=app[METRICS].upload_processed)
    app[RETENTION] = Retention(domain, store)
    yield
    await pipeline.close()


async def housekeeping_ctx(app: web.Application, *, run_monitor: bool) -> AsyncIterator[None]:
    """The monitor (its loop unless ``run_monitor`` is false: tests run its passes themselves)
    and the metrics' own listener."""
    settings, domain = app[SETTINGS], app[DOMAIN]
    monitor = Monitor(domain, settings.monitor_interval_seconds,
                      housekeeping=[app[UPLOADS].sweep, domain.sweep_logins, app[RETENTION].housekeeping,
                                    domain.roll_reports])
    app[MONITOR] = monitor
    metrics_site = (await listener(app[METRICS], settings.metrics_token, *settings.metrics_listen)
                    if settings.metrics_listen else None)
    tasks = Tasks("housekeeping")
    if run_monitor:
        tasks.spawn(monitor.run_forever(), name="monitor")
        app[NOTIFY].start()  # the outbox's deliveries (tests, like the monitor's passes, run them)
    yield
    if metrics_site is not None:
        await metrics_site.cleanup()
    await tasks.close()


def socket_server(settings: Settings) -> SocketServer:
    """socket.io, through Redis when several nodes share the clients (``YUNBANG_REDIS_URL``)."""
    manager = (
        socketio.AsyncRedisManager(settings.redis_url, channel=settings.redis_channel)
        if settings.redis_url
        else None
    )
    sio_logger, eio_logger = socketio_loggers()
    return SocketServer(
        async_mode="aiohttp", cors_allowed_origins=socketio_origin_check, client_manager=manager,
        logger=sio_logger, engineio_logger=eio_logger,
    )


async def disconnect_clients(app: web.Application) -> None:
    """On stop (SIGTERM, an upgrade): close every socket.io connection at once, so its client
    reconnects (to another node behind the load balancer) and the server's wait for open
    handlers does not run to its timeout on a websocket that would never end."""
    eio = app[SIO].eio
    for sid, socket in list(eio.sockets.items()):
        # not engine.io's disconnect(): it waits for each client to take its close packet, and a
        # polling client that went away never comes back for it
        with contextlib.suppress(Exception):
            await socket.close(wait=False)
        eio.sockets.pop(sid, None)


def attach_socketio(app: web.Application) -> None:
    """socket.io at /socket.io/ (what ``sio.attach`` does), except that a frame a client sends
    which engine.io cannot decode ends that client's connection with one log line: engine.io
    lets the decoding error escape its WebSocket loop, which logged an "unhandled error" with a
    traceback and wrote an HTTP 500 into the upgraded stream."""

    async def endpoint(request: web.Request) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await request.app[SIO].handle_request(request)  # async_mode "aiohttp"
            return response
        except Exception as exc:
            if not is_client_garbage(exc):
                raise
            socket_log.warning("engine.io frame from %s", request.remote, exc_info=exc)
            ws: web.WebSocketResponse | None = request.get(OPEN_SOCKET)
            if ws is None:
                return web.Response(status=400, text="malformed engine.io frame")
            await ws.close(code=WSCloseCode.PROTOCOL_ERROR)
            return ws

    async def remember_socket(request: web.Request, response: web.StreamResponse) -> None:
        if isinstance(response, web.WebSocketResponse):
            request[OPEN_SOCKET] = response

    app.on_response_prepare.append(remember_socket)
    for method in ("GET", "POST", "OPTIONS"):
        app.router.add_route(method, "/socket.io/", endpoint)


def add_dev_pages(app: web.Application, settings: Settings) -> None:
    """/dev/call, a bare two-party call page for development and browser tests; served only
    with ``YUNBANG_DEV_PAGES`` (``make run`` sets it), never by default."""
    app.router.add_get("/dev/call", dev_call)
    socketio_js = settings.web_client_dir / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
    if socketio_js.is_file():

        async def socketio_client(request: web.Request) -> web.FileResponse:
            return web.FileResponse(socketio_js)

        app.router.add_get("/dev/socket.io.min.js", socketio_client)
    app.router.add_static("/dev/", STATIC / "dev", show_index=False)


def object_store(settings: Settings) -> ObjectStore:
    """MinIO/S3 when an endpoint is configured, else a directory under the data dir."""
    if settings.s3_endpoint:
        return S3Store(
            endpoint=settings.s3_endpoint, access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
            bucket=settings.s3_bucket, secure=settings.s3_secure, public_endpoint=settings.s3_public_endpoint or None,
        )
    signing = hashlib.sha256(("objects:" + settings.resolved_secret_key()).encode()).digest()
    return LocalStore(settings.data_dir / "objects", signing)


async def index(request: web.Request) -> web.StreamResponse:
    """People land in the browser client once it is built; before that, a page saying how."""
    if (request.app[SETTINGS].web_dist / "index.html").is_file():
        raise web.HTTPFound("/app/")
    return web.FileResponse(STATIC / "index.html")


async def to_web_client(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/app/")


async def web_client(request: web.Request) -> web.StreamResponse:
    """The built Vue app (settings.web_dist): its files, and index.html for its own routes
    (/app/clerk, /app/wall …) so a reload of any page of the app works."""
    dist = request.app[SETTINGS].web_dist.resolve()
    index_file = dist / "index.html"
    if not index_file.is_file():
        raise web.HTTPNotFound(text="The web client is not built: run `make run` (or `make web`).")
    tail = request.match_info["path"]
    if tail:
        target = (dist / tail).resolve()
        if target.is_relative_to(dist) and target.is_file():
            immutable = tail.startswith("assets/")
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            return web.FileResponse(target, headers={"Cache-Control": cache})
        if tail.startswith("assets/") or "." in tail.rsplit("/", 1)[-1]:
            raise web.HTTPNotFound()
    return web.FileResponse(index_file, headers={"Cache-Control": "no-cache"})


async def dev_call(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "dev" / "call.html")
