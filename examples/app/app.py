"""The example application: a WSGI app (Flask, SQLAlchemy) served by Gunicorn.

GET / returns JSON with the serving host, a counter kept in a MariaDB table and
the client's address and scheme as the proxies in front of it saw them,
so one request proves the whole path HAProxy -> Nginx -> Gunicorn -> MariaDB.
Database settings come from the environment (systemd's EnvironmentFile); the
schema comes from the Alembic migrations in `migrations/`, which infra runs
once per release (`app.migrate`) before any host switches to it.
"""

import os
import re
import socket

from flask import Flask, abort, jsonify, request, send_from_directory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from werkzeug.middleware.proxy_fix import ProxyFix


def database_url():
    return URL.create(
        "mysql+pymysql",
        username=os.environ["DATABASE_USER"],
        password=os.environ["DATABASE_PASSWORD"],
        host=os.environ["DATABASE_HOST"],
        port=int(os.environ.get("DATABASE_PORT", "3306")),
        database=os.environ["DATABASE_NAME"],
    )


app = Flask(__name__)
# Nginx (reachable only from the load balancers) sets exactly one
# X-Forwarded-For and X-Forwarded-Proto: the client's address and scheme.
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)
# Connections are made on first use, in each Gunicorn worker.
engine = create_engine(database_url(), pool_pre_ping=True, pool_recycle=300)


@app.route("/")
def index():
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO hits (id, count) VALUES (1, 1) ON DUPLICATE KEY UPDATE count = count + 1")
        )
        count = connection.execute(text("SELECT count FROM hits WHERE id = 1")).scalar_one()
    return jsonify(
        host=socket.gethostname(),
        count=count,
        client=request.remote_addr,
        scheme=request.scheme,
        # `gunicorn/23.0.0`: the server the release's `.venv` brought.
        server=request.environ.get("SERVER_SOFTWARE"),
        # The serving release, and where its static files are served
        # (`app.static`): infra sets both for each release.
        release=os.environ.get("INFRA_RELEASE"),
        static=os.environ.get("STATIC_URL"),
    )


# Uploads go to `media`, a shared directory (`app.shared` in the
# inventory): a link in every release to one directory that outlives them.
MEDIA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "media")
MEDIA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}(\.[a-z0-9]{1,8})?")


@app.route("/media/<name>", methods=["GET", "PUT"])
def media(name):
    if not MEDIA_NAME.fullmatch(name):
        abort(404)
    if request.method == "PUT":
        partial = os.path.join(MEDIA, f".{name}.partial")
        with open(partial, "wb") as upload:
            upload.write(request.get_data())
        os.replace(partial, os.path.join(MEDIA, name))
        return "stored\n", 201
    return send_from_directory(MEDIA, name)


@app.route("/healthz")
def healthz():
    return "ok\n"
