"""``yunbang serve|migrate|seed|create-user|reset-2fa|retention|rollup|audit|backup|restore``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from server import logs
from server.config import Settings, SettingsError

if TYPE_CHECKING:
    from server.preflight import Failure

STOP_WAIT_S = 5.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="yunbang", description="云帮办 远程视频受理平台")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="migrate the database, then serve HTTP + socket.io")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-migrate", action="store_true")
    sub.add_parser("migrate", help="apply database migrations")
    seed = sub.add_parser("seed", help="load data")
    seed.add_argument("--demo", action="store_true", required=True, help="the demo district and accounts")
    user = sub.add_parser("create-user", help="create an account (password from YUNBANG_NEW_PASSWORD or a prompt)")
    user.add_argument("--username", required=True)
    user.add_argument("--role", required=True, choices=["worker", "clerk", "expert", "supervisor", "admin", "auditor"])
    user.add_argument("--display-name", default="")
    user.add_argument("--extension-point", type=int)
    user.add_argument("--window", type=int, action="append")
    user.add_argument("--department", type=int, action="append")
    keep = sub.add_parser("retention", help="delete documents and anonymise residents of cases closed more than "
                                           "YUNBANG_RETENTION_DAYS ago")
    keep.add_argument("--dry-run", action="store_true", help="only list what would go")
    rollup = sub.add_parser("rollup", help="统计报表: build again the daily rollups of the settled service days "
                                           "from --since (after a data fix; the monitor keeps them otherwise)")
    rollup.add_argument("--since", required=True, type=date.fromisoformat, metavar="YYYY-MM-DD")
    rollup.add_argument("--until", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="the last day (default: the last settled day)")
    reset = sub.add_parser("reset-2fa", help="clear an account's second factor and end its sessions "
                                              "(a lost phone, or the last administrator locked out)")
    reset.add_argument("--username", required=True)
    audit = sub.add_parser(
        "audit", help="the audit trail: list (recent entries as JSON lines), verify (the hash chain; "
        "exit 1 naming the first broken row), head (the chain's last link, to keep elsewhere as an anchor)")
    audit.add_argument("what", nargs="?", choices=("list", "verify", "head"), default="list")
    audit.add_argument("--action", help="list: only this action")
    audit.add_argument("--limit", type=int, default=50, help="list: how many entries")
    audit.add_argument("--anchor", action="append", default=[], metavar="SEQ:HASH",
                       help="verify: a head printed earlier by `yunbang audit head` must still be in the chain")
    backup = sub.add_parser("backup", help="objects: copy the S3/MinIO bucket into DIR (resumes; objects gone from "
                                           "the bucket leave DIR). The database: pg_dump (docs/operations.md)")
    backup.add_argument("what", choices=("objects",))
    backup.add_argument("directory", type=Path)
    restore = sub.add_parser("restore", help="objects: put every object of a backup DIR back into the bucket "
                                             "(resumes: objects already there are skipped)")
    restore.add_argument("what", choices=("objects",))
    restore.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    # Whatever yunbang writes (database, key, documents, staging, backups) is for its own user only.
    os.umask(0o077)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"配置错误 / settings error: {exc}", file=sys.stderr)
        return 2
    log_format = logs.configure(settings.log_format)
    if args.command == "serve":
        return _serve(settings, args, log_format)
    if args.command == "migrate":
        from server.migrate import upgrade

        upgrade(settings.effective_database_url, data_key=settings.resolved_data_key())
        print("数据库已迁移到最新版本 / database migrated")
        return 0
    if args.command == "seed":
        return asyncio.run(_seed(settings))
    if args.command == "create-user":
        return asyncio.run(_create_user(settings, args))
    if args.command == "reset-2fa":
        return asyncio.run(_reset_two_factor(settings, args))
    if args.command == "audit":
        return asyncio.run(_audit(settings, args))
    if args.command == "retention":
        return asyncio.run(_retention(settings, dry_run=args.dry_run))
    if args.command == "rollup":
        return asyncio.run(_rollup(settings, args.since, args.until))
    if args.command in ("backup", "restore"):
        return _objects(settings, args.command, args.directory)
    return 1


async def _preflight(settings: Settings) -> list[Failure]:
    """The database, Redis and object store answer before anything starts (server/preflight.py)."""
    from server.app import object_store
    from server.preflight import check_start

    return await check_start(settings, object_store(settings))


def _serve(settings: Settings, args: argparse.Namespace, log_format: str) -> int:
    import aiohttp.web_response
    from aiohttp import web

    from server.app import create_app
    from server.migrate import upgrade
    from server.weblog import JSON_ACCESS_FORMAT, RedactingAccessLogger

    settings = settings.with_changes(
        host=args.host or settings.host, port=args.port or settings.port
    )
    failures = asyncio.run(_preflight(settings))
    if failures:
        for failure in failures:
            print(failure.line(), file=sys.stderr)
        return 3
    if not args.no_migrate:
        upgrade(settings.effective_database_url, data_key=settings.resolved_data_key())
    try:  # the media relay forwards noticeably more packets per core on uvloop
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    app = create_app(settings)
    # aiohttp's own replies (a 400 to a request it cannot parse) would name its and Python's versions
    aiohttp.web_response.SERVER_SOFTWARE = "yunbang"  # type: ignore[attr-defined]  # imported there, not exported; no setting for it
    banner = (f"云帮办 yunbang 运行于 http://{settings.host}:{settings.port}/  (database: "
              f"{'SQLite' if settings.effective_database_url.startswith('sqlite') else 'PostgreSQL'})")
    if log_format == "json":  # a collector reads stdout and stderr as one stream: every line JSON
        logging.getLogger("yunbang").info(banner)
    else:
        print(banner, flush=True)
    # on SIGTERM the socket.io clients are told at once (server.app: disconnect_clients); a request
    # still running after STOP_WAIT_S is cut (an upload resumes where it was), not waited on for
    # aiohttp's default minute
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log_class=RedactingAccessLogger,
                access_log_format=JSON_ACCESS_FORMAT if log_format == "json" else RedactingAccessLogger.LOG_FORMAT,
                shutdown_timeout=STOP_WAIT_S)
    return 0


def _objects(settings: Settings, command: str, directory: Path) -> int:
    """``backup objects DIR`` / ``restore objects DIR`` against the configured bucket."""
    import urllib3.exceptions
    from minio.error import MinioException

    from uploads.backup import BackupError, BucketBackup
    from uploads.storage import minio_client

    if not settings.s3_endpoint:
        where = (settings.data_dir / "objects").resolve()
        print(f"对象存储是本地目录 {where}：请与数据目录一并复制备份 / the objects are files in {where} "
              "(no YUNBANG_S3_ENDPOINT): back them up with the data directory (cp -a, rsync -a)", file=sys.stderr)
        return 2
    client = minio_client(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                          secure=settings.s3_secure)
    job = BucketBackup(client, settings.s3_bucket, directory)
    progress = logging.getLogger("yunbang.backup").info
    try:
        tally = job.backup(progress) if command == "backup" else job.restore(progress)
    except BackupError as exc:
        print(f"{command} objects: {exc}", file=sys.stderr)
        return 1
    except (MinioException, urllib3.exceptions.HTTPError) as exc:
        print(f"无法访问对象存储 / {command} objects: cannot reach the bucket {settings.s3_bucket} at "
              f"{settings.s3_endpoint}: {type(exc).__name__}: {exc} — check YUNBANG_S3_*", file=sys.stderr)
        return 1
    done = "备份完成 / backed up" if command == "backup" else "恢复完成 / restored"
    print(f"{done}: {tally.line('copied')} (bucket {settings.s3_bucket}, {directory})")
    return 0


async def _seed(settings: Settings) -> int:
    from server.crypto import AesGcmSealer
    from server.db import Database
    from server.domain import hours
    from server.migrate import upgrade_async
    from server.seed import (
        demo_accounts_text,
        seed_demo,
        seed_demo_certificates,
        seed_demo_connections,
    )

    await upgrade_async(settings.effective_database_url, data_key=settings.resolved_data_key())
    db = Database(settings.effective_database_url)
    try:
        added = await seed_demo(db)
        today = hours.local_day(settings.queue, datetime.now(UTC))
        if certificates := await seed_demo_certificates(db, AesGcmSealer(settings.resolved_data_key()), today):
            added["certificates"] = certificates
        if connections := await seed_demo_connections(db, datetime.now(UTC)):
            added["point_connections"] = connections
    finally:
        await db.dispose()
    print("演示数据已就绪 / demo data ready" + (f"（新增 {json.dumps(added, ensure_ascii=False)}）" if added else "（无变化）"))
    print(demo_accounts_text())
    if settings.login.require_two_factor:
        print("两步验证已强制：云窗口、大厅管理、管理员、审计员首次登录须先用手机验证器绑定 / "
              "YUNBANG_REQUIRE_2FA is on: clerks, supervisors, admins and auditors enrol an authenticator app first")
    else:
        print("两步验证未强制（演示）；可在页面右上角“两步验证”中自愿开启 / second factor not required in this "
              "demo (YUNBANG_REQUIRE_2FA=false; the production compose file turns it on)")
    return 0


async def _create_user(settings: Settings, args: argparse.Namespace) -> int:
    from server.db import Database
    from server.domain import accounts
    from server.domain.clock import SystemClock
    from server.domain.context import SYSTEM, Uow
    from server.domain.errors import DomainError
    from server.models import Role

    password = os.environ.get("YUNBANG_NEW_PASSWORD") or getpass.getpass("密码 / password: ")
    db = Database(settings.effective_database_url)
    try:
        async with db.write() as session:
            uow = Uow(session, SystemClock(), settings.queue, db.dialect)
            user = await accounts.create_user(
                uow, SYSTEM, username=args.username, password=password, role=Role(args.role),
                display_name=args.display_name, extension_point_id=args.extension_point,
                window_ids=args.window, department_ids=args.department,
            )
        print(f"已创建用户 {user.username}（{user.role.value}），id={user.id}")
        return 0
    except DomainError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await db.dispose()


async def _retention(settings: Settings, *, dry_run: bool) -> int:
    from server.app import object_store
    from server.db import Database
    from server.domain.clock import SystemClock
    from server.events import MemorySink
    from server.retention import Retention
    from server.runtime import Domain

    if settings.retention_days <= 0:
        print("未设置保存期限（YUNBANG_RETENTION_DAYS），不删除任何数据 / no retention period set: nothing to do")
        return 0
    db = Database(settings.effective_database_url)
    try:
        store = object_store(settings)
        await store.ensure_ready()
        retention = Retention(Domain(db, SystemClock(), settings, MemorySink()), store)
        total = 0
        while True:
            report = await retention.run(dry_run=dry_run, limit=100_000 if dry_run else 500)
            for case in report.cases:
                print(json.dumps(case, ensure_ascii=False))
            total += len(report.cases)
            if dry_run or not report.cases:
                break
        verb = "将匿名化 / would purge" if dry_run else "已匿名化 / purged"
        print(f"{verb}: {total} 件（办结超过 {settings.retention_days:g} 天）")
        return 0
    finally:
        await db.dispose()


async def _rollup(settings: Settings, since: date, until: date | None) -> int:
    from server.db import Database
    from server.domain import reports
    from server.domain.clock import SystemClock
    from server.events import MemorySink
    from server.runtime import Domain

    db = Database(settings.effective_database_url)
    try:
        domain = Domain(db, SystemClock(), settings, MemorySink())
        async with domain.unit(write=False) as uow:
            end = reports.settled_before(uow)
        if until is not None:
            end = min(end, until + timedelta(days=1))
        start, total = since, 0
        while start < end:  # a month per transaction
            stop = min(end, start + timedelta(days=31))
            async with domain.unit() as uow:
                total += await reports.roll(uow, start, stop)
            start = stop
        print(f"已汇总 / rolled up: {total} 天（{since.isoformat()} 起，未满 {reports.SETTLE_DAYS} 天的日期除外）")
        return 0
    finally:
        await db.dispose()


async def _reset_two_factor(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from server.db import Database
    from server.domain import two_factor
    from server.domain.clock import SystemClock
    from server.domain.context import SYSTEM, Uow
    from server.models import User

    db = Database(settings.effective_database_url)
    try:
        async with db.write() as session:
            uow = Uow(session, SystemClock(), settings.queue, db.dialect, login=settings.login)
            user_id = await session.scalar(select(User.id).where(User.username == args.username))
            if user_id is None:
                print(f"user_not_found: 用户 {args.username} 不存在", file=sys.stderr)
                return 1
            await two_factor.reset(uow, SYSTEM, user_id)
        print(f"已重置 {args.username} 的两步验证，其全部会话已失效 / second factor reset, sessions ended")
        return 0
    finally:
        await db.dispose()


async def _audit(settings: Settings, args: argparse.Namespace) -> int:
    """Run by an operator on the server: acts as an auditor named ``cli``. ``verify`` and
    ``head`` only read (they work on a read-only replica or a restored backup); ``list`` is
    itself audited, like every read of the log."""
    from server.db import Database
    from server.domain import audit
    from server.domain.clock import SystemClock
    from server.domain.context import Actor, Uow
    from server.domain.errors import DomainError
    from server.models import Role

    operator = Actor(user_id=0, username="cli", role=Role.auditor)
    db = Database(settings.effective_database_url)
    try:
        if args.what == "list":
            async with db.write() as session:
                uow = Uow(session, SystemClock(), settings.queue, db.dialect)
                for row in reversed(await audit.query(uow, operator, action=args.action, limit=args.limit)):
                    print(json.dumps(row, ensure_ascii=False))
            return 0
        async with db.read() as session:
            uow = Uow(session, SystemClock(), settings.queue, db.dialect)
            if args.what == "head":
                print(json.dumps(await audit.head(uow, operator), ensure_ascii=False))
                return 0
            anchors = dict(audit.parse_anchor(raw) for raw in args.anchor)
            verdict = await audit.verify(uow, operator, anchors)
        print(verdict.message, file=sys.stdout if verdict.intact else sys.stderr)
        return 0 if verdict.intact else 1
    except DomainError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 2
    finally:
        await db.dispose()


if __name__ == "__main__":
    sys.exit(main())
