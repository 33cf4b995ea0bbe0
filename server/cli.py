"""``yunbang serve|migrate|seed|create-user|audit``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys

from server.config import Settings, SettingsError


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
    user.add_argument("--role", required=True, choices=["worker", "clerk", "expert", "supervisor", "admin"])
    user.add_argument("--display-name", default="")
    user.add_argument("--extension-point", type=int)
    user.add_argument("--window", type=int, action="append")
    user.add_argument("--department", type=int, action="append")
    audit = sub.add_parser("audit", help="print recent audit entries as JSON lines")
    audit.add_argument("--action")
    audit.add_argument("--limit", type=int, default=50)
    args = parser.parse_args(argv)
    # Whatever yunbang writes (database, key, documents, staging) is for its own user only.
    os.umask(0o077)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"配置错误 / settings error: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(settings, args)
    if args.command == "migrate":
        from server.migrate import upgrade

        upgrade(settings.effective_database_url)
        print("数据库已迁移到最新版本 / database migrated")
        return 0
    if args.command == "seed":
        return asyncio.run(_seed(settings))
    if args.command == "create-user":
        return asyncio.run(_create_user(settings, args))
    if args.command == "audit":
        return asyncio.run(_audit(settings, args))
    return 1


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import aiohttp.web_response
    from aiohttp import web

    from server.app import create_app
    from server.migrate import upgrade
    from server.weblog import RedactingAccessLogger

    settings = settings.with_changes(
        host=args.host or settings.host, port=args.port or settings.port
    )
    if not args.no_migrate:
        upgrade(settings.effective_database_url)
    try:  # the media relay forwards noticeably more packets per core on uvloop
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    app = create_app(settings)
    # aiohttp's own replies (a 400 to a request it cannot parse) would name its and Python's versions
    aiohttp.web_response.SERVER_SOFTWARE = "yunbang"
    print(f"云帮办 yunbang 运行于 http://{settings.host}:{settings.port}/  (database: "
          f"{'SQLite' if settings.effective_database_url.startswith('sqlite') else 'PostgreSQL'})", flush=True)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log_class=RedactingAccessLogger)
    return 0


async def _seed(settings: Settings) -> int:
    from server.db import Database
    from server.migrate import upgrade_async
    from server.seed import demo_accounts_text, seed_demo

    await upgrade_async(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    try:
        added = await seed_demo(db)
    finally:
        await db.dispose()
    print("演示数据已就绪 / demo data ready" + (f"（新增 {json.dumps(added, ensure_ascii=False)}）" if added else "（无变化）"))
    print(demo_accounts_text())
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


async def _audit(settings: Settings, args: argparse.Namespace) -> int:
    from server.db import Database
    from server.domain import audit
    from server.domain.clock import SystemClock
    from server.domain.context import SYSTEM, Uow

    db = Database(settings.effective_database_url)
    try:
        async with db.write() as session:
            uow = Uow(session, SystemClock(), settings.queue, db.dialect)
            for row in reversed(await audit.query(uow, SYSTEM, action=args.action, limit=args.limit)):
                print(json.dumps(row, ensure_ascii=False))
        return 0
    finally:
        await db.dispose()


if __name__ == "__main__":
    sys.exit(main())
