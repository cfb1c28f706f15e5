"""SQLAlchemy models of the catalogue (目录数据库)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from archive.catalogue.types import UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class CaseStatus(StrEnum):
    OPEN = "open"
    FILED = "filed"
    DESTROYED = "destroyed"


class DocumentStatus(StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"  # taken off an open case; its original stays in the store
    REPLACED = "replaced"  # a later upload took its place (same 件内顺序号)
    SPLIT = "split"  # split into documents of its own; its original stays and is locked with the item
    DESTROYED = "destroyed"  # its item was destroyed (销毁): the original is gone, the record remains


class ItemStatus(StrEnum):
    FILED = "filed"
    DESTROYED = "destroyed"


class ScanBatchStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ScanPartStatus(StrEnum):
    UNASSIGNED = "unassigned"
    ATTACHED = "attached"


class HoldStatus(StrEnum):
    ACTIVE = "active"
    LIFTED = "lifted"


class DecisionStatus(StrEnum):
    """An appraisal decision: keep is applied at once; destroy is proposed → listed → destroyed or rejected."""

    APPLIED = "applied"
    PROPOSED = "proposed"
    LISTED = "listed"
    DESTROYED = "destroyed"
    REJECTED = "rejected"


class DestructionListStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    EXECUTED = "executed"
    REJECTED = "rejected"


class DestructionEntryStatus(StrEnum):
    PENDING = "pending"
    DESTROYED = "destroyed"
    REFUSED = "refused"


class LendingStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"


class PaperLoanStatus(StrEnum):
    OUT = "out"
    RETURNED = "returned"


class TransferStatus(StrEnum):
    RELEASED = "released"
    FAILED = "failed"  # the YJ checks failed


class ReceiptStatus(StrEnum):
    ACCEPTED = "accepted"
    RETURNED = "returned"  # 退回


class SweepStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"


class AlertSeverity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"


def _one_of(enum: type[StrEnum], column: str = "status") -> Callable[[Any, str, Any], str]:
    """A validator: the attribute takes only a value of ``enum`` (stored as its plain string; the column stays
    VARCHAR, so no migration and no database constraint)."""

    def check(_self: Any, _key: str, value: Any) -> str:
        return enum(value).value

    return validates(column)(check)


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
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.OPEN.value, index=True)
    _valid_status = _one_of(CaseStatus)
    applicant_name: Mapped[str | None] = mapped_column(String(100))
    applicant_id_number: Mapped[str | None] = mapped_column(String(18), index=True)  # 证件号码
    applicant_mobile: Mapped[str | None] = mapped_column(String(11))
    unit_name: Mapped[str | None] = mapped_column(String(200))
    unit_uscc: Mapped[str | None] = mapped_column(String(18), index=True)  # 统一社会信用代码
    personal_account: Mapped[str | None] = mapped_column(String(32), index=True)  # 个人账号 (账户销户 events)
    unit_account: Mapped[str | None] = mapped_column(String(32))
    loan_contract_no: Mapped[str | None] = mapped_column(String(64), index=True)
    branch: Mapped[str] = mapped_column(String(32), index=True)  # 办理网点
    clerk: Mapped[str] = mapped_column(String(64), index=True)  # 经办人 (the 工作台 lists a clerk's cases)
    accepted_at: Mapped[datetime] = mapped_column(index=True)  # the counter's 工作台 lists today's cases
    closed_at: Mapped[datetime | None] = mapped_column(index=True)
    outcome: Mapped[str | None] = mapped_column(String(16))  # 办结结果: approved, rejected, withdrawn
    trail: Mapped[list[Any] | None]  # 业务行为: 受理、审核、审批、办结, each with person and time
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    documents: Mapped[list[Document]] = relationship(back_populates="case", order_by="Document.sequence")
    item: Mapped[ArchiveItem | None] = relationship(back_populates="case")

    @property
    def active_documents(self) -> list[Document]:
        """The documents the case now consists of (not removed, replaced or split), by 件内顺序号."""
        return [d for d in self.documents if d.is_active]


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
    status: Mapped[str] = mapped_column(String(16), default=DocumentStatus.ACTIVE.value)
    _valid_status = _one_of(DocumentStatus)
    detail: Mapped[dict[str, Any] | None]  # what capture found: dpi per page, warnings, scan origin
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship(back_populates="documents")

    @hybrid_property
    def is_active(self) -> bool:
        """Part of its case now; also a SQL condition (``where(Document.is_active)``)."""
        return self.status == DocumentStatus.ACTIVE


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
    schedule_version: Mapped[str] = mapped_column(String(40))  # ScheduleVersion.ref
    # 保管期限 now in force when a later schedule or appraisal changed it; retention_code stays the 档号's segment
    current_retention: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.FILED.value, index=True)
    _valid_status = _one_of(ItemStatus)
    rendition_key: Mapped[str | None] = mapped_column(String(255))
    rendition_sha256: Mapped[str | None] = mapped_column(String(64))
    rendition_sm3: Mapped[str | None] = mapped_column(String(64))
    signature: Mapped[dict[str, Any] | None]  # signature summary: signer, time, level, timestamp
    filed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)  # the dashboard counts filings by day

    case: Mapped[Case] = relationship(back_populates="item")

    @property
    def effective_retention(self) -> str:
        """The 保管期限 in force: a re-applied schedule's or appraisal's, else the one in the 档号."""
        return self.current_retention or self.retention_code


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


class ApiRateBucket(Base):
    """An API client's token bucket (archive/access.py), shared by every API process on PostgreSQL.

    ``at`` is the database clock's epoch seconds of the last take, so hosts with skewed clocks agree. Unlogged on
    PostgreSQL: a crash forgets the buckets, which only means every client starts with a full burst.
    """

    __tablename__ = "api_rate_bucket"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    at: Mapped[float] = mapped_column(Float)
    ok: Mapped[bool] = mapped_column(Boolean, default=True)  # whether the last take got a token


class LoginLock(Base):
    """Consecutive failed logins under one user name and its lock (archive/logins.py).

    Keyed by the name as typed, known or not, so a locked name answers alike whether or not the account exists.
    """

    __tablename__ = "login_lock"
    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginFailure(Base):
    """One failed login, kept for the throttle window to throttle its client address (the audit log keeps all)."""

    __tablename__ = "login_failure"
    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    username: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(index=True)


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
    status: Mapped[str] = mapped_column(String(16), default=ScanBatchStatus.QUEUED.value, index=True)
    _valid_status = _one_of(ScanBatchStatus)
    pages_total: Mapped[int] = mapped_column(default=0)
    pages_done: Mapped[int] = mapped_column(default=0)
    material_type: Mapped[str] = mapped_column(String(40), default="other")  # given to every attached part
    # the uploader's branch; None: uploaded by someone who sees every branch (or before revision 0012)
    branch: Mapped[str | None] = mapped_column(String(32), index=True)
    covers: Mapped[list[Any] | None]  # [[page, serial(, material)], …] sheets found so far; resumes from here
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
    status: Mapped[str] = mapped_column(String(16), default=ScanPartStatus.UNASSIGNED.value, index=True)
    _valid_status = _one_of(ScanPartStatus)

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

class Hold(Base):
    """冻结: a legal or audit hold, with the items it matched when it was set."""

    __tablename__ = "hold"
    id: Mapped[int] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(500))
    authority: Mapped[str] = mapped_column(String(200))  # 机关
    document_no: Mapped[str | None] = mapped_column(String(100))  # 文号
    scope: Mapped[str] = mapped_column(String(8))  # items | cases | query
    criteria: Mapped[dict[str, Any]]  # what was asked: 档号 list, 业务流水号 list or query filters
    status: Mapped[str] = mapped_column(String(16), default=HoldStatus.ACTIVE.value, index=True)
    _valid_status = _one_of(HoldStatus)
    item_count: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    lifted_by: Mapped[str | None] = mapped_column(String(100))
    lifted_at: Mapped[datetime | None]
    lift_reason: Mapped[str | None] = mapped_column(String(500))


class HoldItem(Base):
    """An item a hold covers (recorded when the hold is set)."""

    __tablename__ = "hold_item"
    hold_id: Mapped[int] = mapped_column(ForeignKey("hold.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("archive_item.id"), primary_key=True, index=True)


class AppraisalDecision(Base):
    """鉴定意见: keep (with a new period) or destroy one item, with the reason."""

    __tablename__ = "appraisal_decision"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("archive_item.id"), index=True)
    decision: Mapped[str] = mapped_column(String(8))  # keep | destroy
    reason: Mapped[str] = mapped_column(String(500))
    # keep: applied at once; destroy: proposed → listed → destroyed, or rejected (list 驳回 or refused at execution)
    status: Mapped[str] = mapped_column(String(16), index=True)
    _valid_status = _one_of(DecisionStatus)
    previous_expiry: Mapped[date | None] = mapped_column(Date)
    retention_code: Mapped[str | None] = mapped_column(String(3))  # keep: the new 保管期限
    new_expiry: Mapped[date | None] = mapped_column(Date)
    decided_by: Mapped[str] = mapped_column(String(100))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class DestructionList(Base):
    """销毁清册: destroy decisions put together for four-eyes approval and execution."""

    __tablename__ = "destruction_list"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=DestructionListStatus.PENDING.value, index=True)
    _valid_status = _one_of(DestructionListStatus)
    item_count: Mapped[int] = mapped_column(default=0)
    page_count: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None]
    executed_at: Mapped[datetime | None]
    pdf_key: Mapped[str | None] = mapped_column(String(255))  # the signed, approved list, kept permanently
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    rejected_by: Mapped[str | None] = mapped_column(String(100))  # an approver who refused the list (驳回)
    rejected_at: Mapped[datetime | None]
    rejection_reason: Mapped[str | None] = mapped_column(String(500))


class DestructionApproval(Base):
    """One of the two approvals (by different people) a 销毁清册 needs."""

    __tablename__ = "destruction_approval"
    __table_args__ = (UniqueConstraint("list_id", "approver"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("destruction_list.id"), index=True)
    approver: Mapped[str] = mapped_column(String(100))
    opinion: Mapped[str | None] = mapped_column(String(500))
    approved_at: Mapped[datetime] = mapped_column(default=utcnow)


class DestructionEntry(Base):
    """A line of a 销毁清册; once destroyed, with the item's status, it is the item's tombstone."""

    __tablename__ = "destruction_entry"
    __table_args__ = (UniqueConstraint("list_id", "item_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("destruction_list.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("archive_item.id"), index=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("appraisal_decision.id"))
    sequence: Mapped[int]  # 序号
    archival_code: Mapped[str] = mapped_column(String(64))  # 档号
    title: Mapped[str] = mapped_column(String(300))  # 题名
    year: Mapped[int]  # 年度
    pieces: Mapped[int] = mapped_column(default=1)  # 件数
    pages: Mapped[int] = mapped_column(default=0)  # 页数
    retention_code: Mapped[str] = mapped_column(String(3))  # 保管期限
    reason: Mapped[str] = mapped_column(String(500))  # 销毁原因
    status: Mapped[str] = mapped_column(String(16), default=DestructionEntryStatus.PENDING.value)
    _valid_status = _one_of(DestructionEntryStatus)
    refusal: Mapped[dict[str, Any] | None]  # {code, message} of the last refused execution
    destroyed_at: Mapped[datetime | None]



# --- retention: schedule versions and trigger events (archive/retention/{schedules,triggers}.py) ---

class ScheduleVersion(Base):
    """分类方案版本: one distinct content of the classification schedule, recorded when first used."""

    __tablename__ = "schedule_version"
    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(40), unique=True)  # ArchiveItem.schedule_version: label (+digest)
    label: Mapped[str] = mapped_column(String(40))  # ``version`` in the file
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the canonical content
    source: Mapped[str] = mapped_column(String(255))  # file it was first loaded from
    text: Mapped[str] = mapped_column(Text)  # the TOML as first seen
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    first_seen_by: Mapped[str] = mapped_column(String(100))


class TriggerEvent(Base):
    """业务事件: a reported 贷款结清/账户销户/单位注销, kept whatever its outcome (also refused ones)."""

    __tablename__ = "trigger_event"
    __table_args__ = (UniqueConstraint("reporter", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    reporter: Mapped[str] = mapped_column(String(100))  # the business system (or person) reporting it
    reporter_type: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))  # the reporter's own event id (idempotency key)
    event_type: Mapped[str] = mapped_column(String(32), index=True)
    key_kind: Mapped[str] = mapped_column(String(24))  # loan_contract_no, personal_account, id_number, uscc
    key_value: Mapped[str] = mapped_column(String(64), index=True)
    event_date: Mapped[date] = mapped_column(Date)
    body_digest: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), index=True)  # applied, nothing_waiting, unknown_key
    status: Mapped[int]  # HTTP status of the first answer, given again on replay
    result: Mapped[dict[str, Any]]  # the first answer
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- retention: lending (archive/retention/lending.py) ---


class LendingRequest(Base):
    """利用申请: a request to use items; once approved it is a time-limited grant (利用授权)."""

    __tablename__ = "lending_request"
    id: Mapped[int] = mapped_column(primary_key=True)
    requester: Mapped[str] = mapped_column(String(64), index=True)  # username of 利用人
    department: Mapped[str | None] = mapped_column(String(100))  # 单位/部门
    purpose: Mapped[str] = mapped_column(String(16))  # review, audit, judicial, self, other
    purpose_text: Mapped[str | None] = mapped_column(String(500))
    mode: Mapped[str] = mapped_column(String(16))  # online, download, print, paper
    days_requested: Mapped[int]
    authority: Mapped[str | None] = mapped_column(String(16))  # external requester: court, police, discipline
    external_unit: Mapped[str | None] = mapped_column(String(200))  # e.g. the court's name
    legal_basis: Mapped[str | None] = mapped_column(String(300))  # 法律文书 reference (协助查询通知书 文号)
    status: Mapped[str] = mapped_column(String(16), default=LendingStatus.PENDING.value, index=True)
    _valid_status = _one_of(LendingStatus)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(String(500))
    days_granted: Mapped[int | None]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    items: Mapped[list[LendingItem]] = relationship(order_by="LendingItem.position")


class LendingItem(Base):
    """One item of a 利用申请."""

    __tablename__ = "lending_item"
    request_id: Mapped[int] = mapped_column(ForeignKey("lending_request.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("archive_item.id"), primary_key=True, index=True)
    archival_code: Mapped[str] = mapped_column(String(64))
    position: Mapped[int]


class PaperLoan(Base):
    """实体借阅: paper originals lent out (借出), reminded (催还) and returned (归还)."""

    __tablename__ = "paper_loan"
    id: Mapped[int] = mapped_column(primary_key=True)
    borrower: Mapped[str] = mapped_column(String(100))
    borrower_unit: Mapped[str | None] = mapped_column(String(200))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("lending_request.id"))  # the approved paper request
    lent_by: Mapped[str] = mapped_column(String(64))
    lent_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_date: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(16), default=PaperLoanStatus.OUT.value, index=True)
    _valid_status = _one_of(PaperLoanStatus)
    reminders: Mapped[list[Any]] = mapped_column(default=list)  # [{at, by, note}]
    returned_at: Mapped[datetime | None]
    returned_to: Mapped[str | None] = mapped_column(String(64))
    condition_note: Mapped[str | None] = mapped_column(String(500))

    items: Mapped[list[PaperLoanItem]] = relationship(order_by="PaperLoanItem.position")


class PaperLoanItem(Base):
    """One item of a paper loan."""

    __tablename__ = "paper_loan_item"
    loan_id: Mapped[int] = mapped_column(ForeignKey("paper_loan.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("archive_item.id"), primary_key=True, index=True)
    archival_code: Mapped[str] = mapped_column(String(64))
    position: Mapped[int]


# --- retention: transfer packages (archive/retention/transfer.py) ---


class TransferPackage(Base):
    """移交信息包: a selection of filed items exported as EEPs in a BagIt-style package."""

    __tablename__ = "transfer_package"
    id: Mapped[int] = mapped_column(primary_key=True)
    package_no: Mapped[str] = mapped_column(String(64), unique=True)  # 移交批次号
    sender: Mapped[str] = mapped_column(String(200))  # 移交单位
    receiver: Mapped[str] = mapped_column(String(200))  # 接收单位
    selection: Mapped[dict[str, Any]]  # the 档号 list or filters it was made from
    item_count: Mapped[int]  # 件数
    payload_bytes: Mapped[int] = mapped_column(BigInteger)  # 字节数 of the EEPs
    bag_sha256: Mapped[str] = mapped_column(String(64))  # digest of tagmanifest-sha256.txt: the whole bag
    bag_sm3: Mapped[str] = mapped_column(String(64))
    zip_key: Mapped[str | None] = mapped_column(String(255))  # object-store key of the zip
    zip_size: Mapped[int | None] = mapped_column(BigInteger)
    zip_sha256: Mapped[str | None] = mapped_column(String(64))
    zip_sm3: Mapped[str | None] = mapped_column(String(64))
    register: Mapped[dict[str, Any]]  # 移交登记表 data as in the package
    status: Mapped[str] = mapped_column(String(16), index=True)  # released, failed (YJ checks)
    _valid_status = _one_of(TransferStatus)
    check_results: Mapped[list[Any]]  # YJ results: code, name, outcome, detail, target
    report_id: Mapped[int | None]  # check_report.id once the checks framework stores reports
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TransferReceipt(Base):
    """接收记录: a received package, verified; the data of the 移交与接收登记表."""

    __tablename__ = "transfer_receipt"
    id: Mapped[int] = mapped_column(primary_key=True)
    package_no: Mapped[str | None] = mapped_column(String(64), index=True)  # as declared by the sender
    sender: Mapped[str | None] = mapped_column(String(200))
    receiver: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(255))  # upload file name or path
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))  # of the received zip (or bag digest of a directory)
    sm3: Mapped[str] = mapped_column(String(64))
    sender_sha256: Mapped[str | None] = mapped_column(String(64))  # the digest the sender declared
    stored_key: Mapped[str | None] = mapped_column(String(255))  # the received zip, kept as evidence
    item_count: Mapped[int]  # EEPs found
    payload_bytes: Mapped[int] = mapped_column(BigInteger)
    register: Mapped[dict[str, Any] | None]  # the sender's 移交登记表 as received
    status: Mapped[str] = mapped_column(String(16), index=True)  # accepted, returned (退回)
    _valid_status = _one_of(ReceiptStatus)
    check_results: Mapped[list[Any]]
    report_id: Mapped[int | None]
    received_by: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- checks: four-properties check reports (archive/checks/) ---


class CheckReport(Base):
    """检测报告: one run of check items (GD/YJ/BC) on one subject (档号, package id, store …)."""

    __tablename__ = "check_report"
    id: Mapped[int] = mapped_column(primary_key=True)
    stage: Mapped[str] = mapped_column(String(4), index=True)  # gd, yj, bc
    subject: Mapped[str] = mapped_column(String(128), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("archive_item.id"), index=True)  # the item checked
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    operator: Mapped[str] = mapped_column(String(100))
    operator_type: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))  # passed, warning, failed
    passed: Mapped[bool] = mapped_column(Boolean)  # no blocking failure
    counts: Mapped[dict[str, Any]]  # per Outcome value, plus "total"
    context: Mapped[dict[str, Any] | None]  # what the caller gave: package id, store, trigger …

    results: Mapped[list[CheckResult]] = relationship(back_populates="report", order_by="CheckResult.position")


class CheckResult(Base):
    """One result of one check item in a report; manual items are completed by a person later."""

    __tablename__ = "check_result"
    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("check_report.id"), index=True)
    position: Mapped[int]
    code: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(100))
    dimension: Mapped[str] = mapped_column(String(16))
    object: Mapped[str] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    blocking: Mapped[bool] = mapped_column(Boolean)
    basis: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any] | None]
    recorded_by: Mapped[str | None] = mapped_column(String(100))  # a person, for manual items
    recorded_at: Mapped[datetime | None]

    report: Mapped[CheckReport] = relationship(back_populates="results")


# --- checks: storage sweeps and alerts (archive/checks/sweep.py) ---


class StorageSweep(Base):
    """One run of the storage checks (长期保存环节检测): resumable from its cursor (the last key checked)."""

    __tablename__ = "storage_sweep"
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(32))  # which copies: primary, secondary, all
    tier: Mapped[str] = mapped_column(String(32))  # which objects: all, originals, renditions
    status: Mapped[str] = mapped_column(String(16), default=SweepStatus.RUNNING.value, index=True)
    _valid_status = _one_of(SweepStatus)
    cursor: Mapped[str | None] = mapped_column(String(255))  # keys up to here are checked
    object_count: Mapped[int] = mapped_column(BigInteger, default=0)
    byte_count: Mapped[int] = mapped_column(BigInteger, default=0)
    findings: Mapped[int] = mapped_column(default=0)
    options: Mapped[dict[str, Any]]  # rate, signature cadence, checkpoint interval
    tally: Mapped[dict[str, Any]]  # per item code: checked count and failures so far (for the report)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("check_report.id"))
    error: Mapped[str | None] = mapped_column(Text)
    started_by: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    checkpoint_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class StorageAlert(Base):
    """A finding of the storage checks (告警): one row per item code and target, seen again = last_seen moves."""

    __tablename__ = "storage_alert"
    __table_args__ = (UniqueConstraint("code", "target"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), index=True)  # BC-x-y
    target: Mapped[str] = mapped_column(String(300))  # object key (and copy), 档号, audit event …
    severity: Mapped[str] = mapped_column(String(16), index=True)  # critical, warning
    _valid_severity = _one_of(AlertSeverity, "severity")
    message: Mapped[str] = mapped_column(Text)  # Chinese, for the archivist
    detail: Mapped[dict[str, Any]]
    occurrences: Mapped[int] = mapped_column(default=1)
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("storage_sweep.id"))  # the last sweep that saw it
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    acknowledged_at: Mapped[datetime | None]
    acknowledge_note: Mapped[str | None] = mapped_column(String(500))


# --- web console: background jobs and saved searches (archive/jobs.py, archive/web) ---


class JobStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # its process ended before it finished; it may be started again


class Job(Base):
    """A long action started from the web console (销毁执行, 移交导出, 重新适用分类方案 …) with its progress.

    ``key`` names what it acts on (``destruction.execute:12``): while one job of a key runs, starting it again
    answers the running job instead of a second one.
    """

    __tablename__ = "job"
    # at most one running job per key, across processes (a partial unique index on both databases)
    __table_args__ = (Index("uq_job_running_key", "key", unique=True, sqlite_where=text("status = 'running'"),
                            postgresql_where=text("status = 'running'")),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200), index=True)
    title: Mapped[str] = mapped_column(String(200))  # Chinese, for the person watching it
    permission: Mapped[str] = mapped_column(String(64))  # who may watch it besides the person who started it
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.RUNNING.value, index=True)
    _valid_status = _one_of(JobStatus)
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int | None] = mapped_column(BigInteger)
    owner: Mapped[dict[str, Any]]  # host and pid of the process running it
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what the page shows when it is done
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {code, message} when it failed
    link: Mapped[str | None] = mapped_column(String(300))  # where to see what it made
    started_by: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class SavedSearch(Base):
    """A person's saved search (保存的检索): its name and the query string of the search page."""

    __tablename__ = "saved_search"
    __table_args__ = (UniqueConstraint("owner", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(100))
    query: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- long-term validation: every version of an item's rendition (archive/ltv.py) ---


class RenditionVersion(Base):
    """One version of an item's signed rendition, oldest first: the signed one (filing), then one per archive
    time-stamp renewal (a new object: the older ones keep their WORM locks). The item's ``rendition_*`` columns
    name the newest."""

    __tablename__ = "rendition_version"
    __table_args__ = (UniqueConstraint("item_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("archive_item.id"), index=True)
    version: Mapped[int]  # 1, 2, …
    object_key: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    sm3: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # signed | renewal
    level: Mapped[str] = mapped_column(String(8))  # PAdES B-B, B-T, B-LT, B-LTA
    timestamp_expiry: Mapped[datetime | None] = mapped_column(index=True)  # newest TSA cert's expiry
    algorithm: Mapped[str | None] = mapped_column(String(32))  # digest algorithm of the newest time stamp
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- data quality: rule runs, findings, corrections, plans, reconciliations (archive/dq/) ---


class DqRun(Base):
    """One batch run of data-quality rules (常态化检核): resumable, its cursor the rules already done."""

    __tablename__ = "dq_run"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)  # running, done, failed
    rules: Mapped[dict[str, Any]]  # rule code -> version, as run
    since: Mapped[datetime | None]
    done_rules: Mapped[list[Any]] = mapped_column(default=list)  # codes finished (the resume cursor)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)  # rule code -> {failing, new}
    rule_errors: Mapped[list[Any]] = mapped_column(default=list)  # [{rule, message}]: a rule that raised
    started_by: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class DqFinding(Base):
    """问题数据: one failing object of one rule, deduplicated across runs by its fingerprint, with a lifecycle."""

    __tablename__ = "dq_finding"
    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of rule + object + key values
    rule_code: Mapped[str] = mapped_column(String(16), index=True)
    rule_version: Mapped[int]
    dimension: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[str] = mapped_column(String(8), index=True)
    object_type: Mapped[str] = mapped_column(String(16))
    object_key: Mapped[str] = mapped_column(String(128), index=True)  # 业务流水号, 档号 or document id
    serial: Mapped[str | None] = mapped_column(String(64), index=True)  # the case the object belongs to
    key_values: Mapped[dict[str, Any]]
    message: Mapped[str] = mapped_column(Text)
    branch: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    owner: Mapped[str | None] = mapped_column(String(100), index=True)  # department, branch or 受委托银行
    owner_kind: Mapped[str | None] = mapped_column(String(16))  # department, branch, bank
    due_date: Mapped[date | None] = mapped_column(Date, index=True)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    seen_count: Mapped[int] = mapped_column(default=1)
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("dq_run.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(index=True)
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    waive_reason: Mapped[str | None] = mapped_column(String(500))
    history: Mapped[list[Any]] = mapped_column(default=list)  # [{at, by, from, to, note}]


class DqCorrection(Base):
    """著录更正: one audited change of a catalogue value, with before/after and the finding it closes."""

    __tablename__ = "dq_correction"
    id: Mapped[int] = mapped_column(primary_key=True)
    finding_id: Mapped[int | None] = mapped_column(ForeignKey("dq_finding.id"), index=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("dq_plan.id"), index=True)
    serial: Mapped[str] = mapped_column(String(64), index=True)
    field: Mapped[str] = mapped_column(String(40))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="applied")  # applied, rolled_back
    by: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class DqPlan(Base):
    """A batch clean-up (批量治理): proposed, approved by someone else, applied after a backup, may be rolled back."""

    __tablename__ = "dq_plan"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    changes: Mapped[list[Any]]  # [{serial, field, after}]
    status: Mapped[str] = mapped_column(String(16), default="proposed", index=True)
    backup: Mapped[list[Any] | None]  # the affected rows' values before applying
    proposed_by: Mapped[str] = mapped_column(String(100))
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(100))
    approved_at: Mapped[datetime | None]
    applied_at: Mapped[datetime | None]
    rolled_back_at: Mapped[datetime | None]


class DqReconciliation(Base):
    """数据比对: the business system's list of cases closed on a day against the archive's own records."""

    __tablename__ = "dq_reconciliation"
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    reported: Mapped[int]
    filed: Mapped[int]
    counts: Mapped[dict[str, Any]]
    filing_rate: Mapped[float | None] = mapped_column(Float)
    by: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportReport(Base):
    """A dry-run report (预检报告) of a vendor delivery's manifest; an import proceeds only from an approved one."""

    __tablename__ = "import_report"
    id: Mapped[int] = mapped_column(primary_key=True)
    manifest_sha256: Mapped[str] = mapped_column(String(64), index=True)
    manifest_path: Mapped[str] = mapped_column(String(1000))
    report_path: Mapped[str] = mapped_column(String(1000))
    report_sha256: Mapped[str] = mapped_column(String(64))
    vendor: Mapped[str] = mapped_column(String(100))
    delivery_name: Mapped[str] = mapped_column(String(100))
    counts: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft, approved
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(100))
    approved_at: Mapped[datetime | None]


class ImportJob(Base):
    """An import (存量档案导入) of one manifest: resumable, keyed by the manifest's digest."""

    __tablename__ = "import_job"
    id: Mapped[int] = mapped_column(primary_key=True)
    manifest_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    manifest_path: Mapped[str] = mapped_column(String(1000))
    report_id: Mapped[int] = mapped_column(ForeignKey("import_report.id"))
    vendor: Mapped[str] = mapped_column(String(100))
    delivery_name: Mapped[str] = mapped_column(String(100))
    profile_sha256: Mapped[str] = mapped_column(String(64))
    operator: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)  # running, done
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ImportItem(Base):
    """One catalogue row of an import: pending → stored → signed → catalogued → indexed, or failed/excluded."""

    __tablename__ = "import_item"
    __table_args__ = (UniqueConstraint("job_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_job.id"), index=True)
    key: Mapped[str] = mapped_column(String(128))  # the row's 档号 (or 第N行 when it has none)
    row: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    archival_code: Mapped[str | None] = mapped_column(String(64))  # the item's 档号
    original_code: Mapped[str | None] = mapped_column(String(64))  # 原档号 (the vendor catalogue's)
    retention_source: Mapped[str | None] = mapped_column(String(16))  # catalogue, schedule, archival_code
    item_id: Mapped[int | None] = mapped_column(ForeignKey("archive_item.id"))
    pages: Mapped[int] = mapped_column(default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    detail: Mapped[dict[str, Any] | None]  # keys and digests of what was stored for it
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ImportSample(Base):
    """An item drawn for manual inspection (抽检) after an import, with its recorded verdict."""

    __tablename__ = "import_sample"
    __table_args__ = (UniqueConstraint("job_id", "import_item_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_job.id"), index=True)
    import_item_id: Mapped[int] = mapped_column(ForeignKey("import_item.id"))
    verdict: Mapped[str] = mapped_column(String(16), default="pending")  # pending, pass, fail
    note: Mapped[str | None] = mapped_column(String(500))
    checked_by: Mapped[str | None] = mapped_column(String(100))
    checked_at: Mapped[datetime | None]
