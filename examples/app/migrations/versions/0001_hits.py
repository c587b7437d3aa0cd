"""The counter's table.

`IF NOT EXISTS`: databases from before the app had migrations have it.
"""

from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.execute("CREATE TABLE IF NOT EXISTS hits (id TINYINT PRIMARY KEY, count BIGINT NOT NULL)")


def downgrade():
    op.drop_table("hits")
