"""The example application: a WSGI app (Flask) served by Gunicorn.

GET / returns JSON with the serving host and a counter kept in a MySQL table,
so one request proves the whole path HAProxy -> Nginx -> Gunicorn -> MariaDB.
Database settings come from the environment (systemd's EnvironmentFile).
"""

import os
import socket

import pymysql
from flask import Flask, jsonify

app = Flask(__name__)


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
    return jsonify(host=socket.gethostname(), count=count)


@app.route("/healthz")
def healthz():
    return "ok\n"
