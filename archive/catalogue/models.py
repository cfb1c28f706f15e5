"""SQLAlchemy models of the catalogue (目录数据库)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from archive.catalogue.types import UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Fonds(Base):
    """全宗: the archive of one center."""

    __tablename__ = "fonds"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Case(Base):
    """业务 (件 once filed): one business transaction identified by its 业务流水号."""

    __tablename__ = "case"
    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)  # 业务流水号
    fonds_id: Mapped[int] = mapped_column(ForeignKey("fonds.id"))
    category: Mapped[str] = mapped_column(String(2), index=True)
    business_type: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    applicant_name: Mapped[str | None] = mapped_column(String(100))
    applicant_id_number: Mapped[str | None] = mapped_column(String(18), index=True)  # 证件号码
    applicant_mobile: Mapped[str | None] = mapped_column(String(11))
    unit_name: Mapped[str | None] = mapped_column(String(200))
    unit_uscc: Mapped[str | None] = mapped_column(String(18), index=True)  # 统一社会信用代码
    personal_account: Mapped[str | None] = mapped_column(String(32))
    unit_account: Mapped[str | None] = mapped_column(String(32))
    loan_contract_no: Mapped[str | None] = mapped_column(String(64), index=True)
    branch: Mapped[str] = mapped_column(String(32), index=True)  # 办理网点
    clerk: Mapped[str] = mapped_column(String(64))  # 经办人
    accepted_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))  # 办结结果: approved, rejected, withdrawn
    trail: Mapped[list[Any] | None]  # 业务行为: 受理、审核、审批、办结, each with person and time
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    documents: Mapped[list[Document]] = relationship(back_populates="case", order_by="Document.sequence")
    item: Mapped[ArchiveItem | None] = relationship(back_populates="case")


class Document(Base):
    """材料: one original file as received, stored unchanged."""

    __tablename__ = "document"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    sequence: Mapped[int]
    material_type: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(255))
    original_key: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    sm3: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    page_count: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active, removed, replaced
    detail: Mapped[dict[str, Any] | None]  # what capture found: dpi per page, warnings, scan origin
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship(back_populates="documents")


class ArchiveItem(Base):
    """归档件: the filed, signed archival record of a case, with its 档号 and retention."""

    __tablename__ = "archive_item"
    __table_args__ = (UniqueConstraint("fonds_code", "year", "retention_code", "category", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), unique=True)
    archival_code: Mapped[str] = mapped_column(String(64), unique=True)  # 档号
    fonds_code: Mapped[str] = mapped_column(String(8))
    year: Mapped[int]
    retention_code: Mapped[str] = mapped_column(String(3), index=True)
    category: Mapped[str] = mapped_column(String(2))
    number: Mapped[int]  # 件号
    trigger: Mapped[str] = mapped_column(String(20))
    trigger_date: Mapped[date | None] = mapped_column(Date)
    expiry_date: Mapped[date | None] = mapped_column(Date, index=True)
    schedule_version: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="filed", index=True)
    rendition_key: Mapped[str | None] = mapped_column(String(255))
    rendition_sha256: Mapped[str | None] = mapped_column(String(64))
    rendition_sm3: Mapped[str | None] = mapped_column(String(64))
    signature: Mapped[dict[str, Any] | None]  # signature summary: signer, time, level, timestamp
    filed_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship(back_populates="item")


class ArchivalCodeSequence(Base):
    """件号 counter per (全宗, 年度, 保管期限, 类别)."""

    __tablename__ = "archival_code_sequence"
    fonds_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    retention_code: Mapped[str] = mapped_column(String(3), primary_key=True)
    category: Mapped[str] = mapped_column(String(2), primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)


user_role = Table(
    "user_role",
    Base.metadata,
    Column("user_id", ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True),
    Column("role_code", ForeignKey("role.code"), primary_key=True),
)


class Role(Base):
    """A role; its permissions are defined in code (archive/identity/permissions.py)."""

    __tablename__ = "role"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    branch: Mapped[str | None] = mapped_column(String(32))  # None: all branches
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    roles: Mapped[list[Role]] = relationship(secondary=user_role, lazy="selectin")

    @property
    def role_codes(self) -> list[str]:
        return sorted(r.code for r in self.roles)


class UserSession(Base):
    """A login token (stored as its SHA-256)."""

    __tablename__ = "user_session"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class ApiClient(Base):
    """A business system calling the API with a scoped key (stored hashed)."""

    __tablename__ = "api_client"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[Any]]
    branches: Mapped[list[Any] | None]  # None: all branches
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditEvent(Base):
    """One entry of the append-only, hash-chained audit log (审计日志)."""

    __tablename__ = "audit_event"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    actor_type: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The chain's last link; its row lock serialises appends."""

    __tablename__ = "audit_chain_head"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))


class ScanBatch(Base):
    """A batch-scanned stack (批量扫描) being split at its cover sheets."""

    __tablename__ = "scan_batch"
    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    original_key: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)  # queued, running, done, failed
    pages_total: Mapped[int] = mapped_column(default=0)
    pages_done: Mapped[int] = mapped_column(default=0)
    material_type: Mapped[str] = mapped_column(String(40), default="other")  # given to every attached part
    covers: Mapped[list[Any] | None]  # [[page, serial], …] found so far: a resumed run goes on from here
    error: Mapped[dict[str, Any] | None]
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    parts: Mapped[list[ScanPart]] = relationship(back_populates="batch", order_by="ScanPart.first_page")


class ScanPart(Base):
    """A run of pages of a batch: after a cover sheet (assigned to its case) or unassigned (待分配)."""

    __tablename__ = "scan_part"
    __table_args__ = (UniqueConstraint("batch_id", "first_page"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("scan_batch.id"), index=True)
    first_page: Mapped[int]  # 1-based, inclusive
    last_page: Mapped[int]
    serial: Mapped[str | None] = mapped_column(String(64))  # as read from the cover sheet
    reason: Mapped[str | None] = mapped_column(String(32))  # why unassigned: before_first_cover, unknown_serial
    document_id: Mapped[int | None] = mapped_column(ForeignKey("document.id"))
    status: Mapped[str] = mapped_column(String(16), default="unassigned", index=True)  # unassigned, attached

    batch: Mapped[ScanBatch] = relationship(back_populates="parts")


class OrphanObject(Base):
    """An object no catalogue row points at, first seen at a time: removed by gc after a grace period."""

    __tablename__ = "orphan_object"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """Work derived from a catalogue change (index, replicate...), written in the same transaction."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    topic: Mapped[str] = mapped_column(String(32), index=True)
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


# --- retention: holds, appraisal, destruction (archive/retention/{holds,appraisal,destruction}.py) ---


# --- retention: schedule versions and trigger events (archive/retention/{schedules,triggers}.py) ---


# --- retention: lending (archive/retention/lending.py) ---


# --- retention: transfer packages (archive/retention/transfer.py) ---


# --- checks: four-properties check reports (archive/checks/) ---


# --- checks: storage sweeps and alerts (archive/checks/sweep.py) ---
