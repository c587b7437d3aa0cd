"""The example application: a WSGI app (Flask) served by Gunicorn.

GET / returns JSON with the serving host, a counter kept in a MySQL table and
the client's address and scheme as the proxies in front of it saw them,
so one request proves the whole path HAProxy -> Nginx -> Gunicorn -> MariaDB.
Database settings come from the environment (systemd's EnvironmentFile).
"""

import os
import socket

import pymysql
from flask import Flask, jsonify, request
from werkzeug.middleware.proxy_fix import ProxyFix

app = Flask(__name__)
# Nginx (reachable only from the load balancers) sets exactly one
# X-Forwarded-For and X-Forwarded-Proto: the client's address and scheme.
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)


def connect():
    return pymysql.connect(
        host=os.environ["DATABASE_HOST"],
        port=int(os.environ.get("DATABASE_PORT", "3306")),
        user=os.environ["DATABASE_USER"],
        password=os.environ["DATABASE_PASSWORD"],
        database=os.environ["DATABASE_NAME"],
        connect_timeout=5,
        autocommit=True,
    )


@app.route("/")
def index():
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS hits (id TINYINT PRIMARY KEY, count BIGINT NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO hits (id, count) VALUES (1, 1) ON DUPLICATE KEY UPDATE count = count + 1"
        )
        cursor.execute("SELECT count FROM hits WHERE id = 1")
        (count,) = cursor.fetchone()
    return jsonify(
        host=socket.gethostname(),
        count=count,
        client=request.remote_addr,
        scheme=request.scheme,
    )


@app.route("/healthz")
def healthz():
    return "ok\n"
