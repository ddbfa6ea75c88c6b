"""Initial schema: tokens, runs, summary metrics, images, defects, registrations, jobs.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.CheckConstraint("role IN ('read', 'write', 'admin')", name="ck_tokens_role"),
    )
    op.create_index("ix_tokens_token_hash", "tokens", ["token_hash"], unique=True)
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.Column("registered", TS, nullable=False),
        sa.Column("params_hash", sa.String(64), nullable=False),
        sa.Column("code_version", sa.String(128), nullable=False),
        sa.Column("input_hashes", JSON, nullable=False),
        sa.Column("provenance", JSON, nullable=False),
        sa.Column("datasets", JSON, nullable=False),
        sa.Column("methods", JSON, nullable=False),
        sa.Column("prefix", sa.String(256), nullable=False),
        sa.Column("report_key", sa.String(512), nullable=True),
        sa.Column("tables", JSON, nullable=False),
        sa.CheckConstraint("kind IN ('pipeline', 'batch')", name="ck_runs_kind"),
    )
    op.create_index("ix_runs_kind", "runs", ["kind"])
    op.create_index("ix_runs_created", "runs", ["created"])
    op.create_table(
        "summary_metrics",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("method", sa.String(128), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("mean", sa.Float, nullable=True),
        sa.Column("ci_low", sa.Float, nullable=True),
        sa.Column("ci_high", sa.Float, nullable=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.UniqueConstraint("run_id", "dataset", "method", "metric", name="uq_summary_metric"),
    )
    op.create_index("ix_summary_metrics_run_id", "summary_metrics", ["run_id"])
    op.create_table(
        "images",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("levels", sa.Integer, nullable=False),
        sa.Column("layers", JSON, nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.CheckConstraint("kind IN ('image', 'scan')", name="ck_images_kind"),
    )
    op.create_index("ix_images_run_id", "images", ["run_id"])
    op.create_index("ix_images_dataset", "images", ["dataset"])
    op.create_table(
        "defects",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("image_id", sa.String(64), sa.ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
        sa.Column("defect_id", sa.Integer, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("bbox", JSON, nullable=False),
        sa.Column("retention", JSON, nullable=False),
    )
    op.create_index("ix_defects_run_id", "defects", ["run_id"])
    op.create_index("ix_defects_image_id", "defects", ["image_id"])
    op.create_table(
        "registrations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started", TS, nullable=False),
        sa.Column("finished", TS, nullable=True),
    )
    op.create_index("ix_registrations_run_id", "registrations", ["run_id"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.Column("updated", TS, nullable=False),
        sa.Column("filename", sa.String(256), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("object_key", sa.String(512), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
    )


def downgrade() -> None:
    for table in ("jobs", "registrations", "defects", "images", "summary_metrics", "runs", "tokens"):
        op.drop_table(table)
