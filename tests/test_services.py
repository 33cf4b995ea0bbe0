"""`make test` on a machine without PostgreSQL or Redis running: pointed at closed ports, the
run starts its own from Debian's packages, hands their addresses to what it runs, and leaves
nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.services import _free_port, postgres_answers, redis_answers

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import os, sys
from tests.services import postgres_answers, redis_answers
pg, redis = os.environ["YUNBANG_TEST_PG"], os.environ["YUNBANG_TEST_REDIS"]
print(pg, redis, postgres_answers(pg), redis_answers(redis))
"""


def test_closed_ports_get_servers_of_their_own_for_the_run_and_nothing_is_left() -> None:
    closed_pg, closed_redis = _free_port(), _free_port()
    env = {**os.environ, "YUNBANG_TEST_PG": f"postgresql://postgres@127.0.0.1:{closed_pg}/test",
           "YUNBANG_TEST_REDIS": f"redis://127.0.0.1:{closed_redis}/0"}
    done = subprocess.run([sys.executable, "-m", "tests.services", "--", sys.executable, "-c", CHECK],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    pg, redis, pg_ok, redis_ok = done.stdout.split()
    assert (pg_ok, redis_ok) == ("True", "True"), done.stdout
    assert f":{closed_pg}/" not in pg and f":{closed_redis}/" not in redis, "servers of its own, elsewhere"
    assert "started PostgreSQL on 127.0.0.1:" in done.stderr and "Redis on 127.0.0.1:" in done.stderr
    assert not postgres_answers(pg.replace("/test", "/postgres")) and not redis_answers(redis), "stopped at the end"


def test_servers_that_answer_are_used_as_they_are() -> None:
    env = dict(os.environ)  # this run's servers: configured or started by conftest, they answer
    done = subprocess.run([sys.executable, "-m", "tests.services", "--", sys.executable, "-c", CHECK],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == [env["YUNBANG_TEST_PG"], env["YUNBANG_TEST_REDIS"]]
    assert "started" not in done.stderr
