"""Compare the two copies of every object in a replicated store (or check one store's fixity).

A deep check re-reads each copy and recomputes its SHA-256 (and SM3 when one was recorded); a quick
check compares the recorded metadata only. On a versioned (object-lock) S3 bucket, versions written over a
key and delete markers hiding it are findings too (``extra_versions``, ``delete_marker``): the store still reads
the version it wrote, but someone wrote or deleted around the archive. Findings name the key and the problem;
``repair`` copies an object to the side that lacks it and aligns retention and legal hold upwards. Damaged copies are
reported, never repaired automatically: they are read-only and retained, so an archivist decides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from signing.fixity import digest_stream
from storage.base import IntegrityFailure, ObjectInfo, ObjectNotFound, ObjectStore
from storage.errors import StorageError
from storage.replicated import ReplicatedStore, copy_object

Problem = Literal[
    "missing_in_primary", "missing_in_secondary", "corrupt_in_primary", "corrupt_in_secondary",
    "unreadable_in_primary", "unreadable_in_secondary", "missing_everywhere", "differing",
    "retention_differs", "legal_hold_differs", "missing", "corrupt", "unreadable",
    "extra_versions", "delete_marker", "extra_versions_in_primary", "extra_versions_in_secondary",
    "delete_marker_in_primary", "delete_marker_in_secondary",
]

_MEANING: dict[str, str] = {
    "missing": "缺失", "corrupt": "已损坏（内容与登记的摘要不符）", "unreadable": "无法读取",
    "missing_everywhere": "两个副本都不存在", "differing": "两个副本内容不同",
    "retention_differs": "两个副本的保管期限不同", "legal_hold_differs": "两个副本的法律保全状态不同",
}


@dataclass
class Finding:
    key: str
    problem: Problem
    detail: str
    repaired: bool = False


Progress = Callable[[str], None]


def verify(store: ObjectStore, *, prefix: str = "", keys: Iterable[str] | None = None, deep: bool = True,
           repair: bool = False, on_progress: Progress | None = None) -> list[Finding]:
    """Findings for every key under ``prefix`` (or for ``keys``); empty when all copies agree and are intact."""
    findings: list[Finding] = []
    for key in store.list_keys(prefix) if keys is None else keys:
        if isinstance(store, ReplicatedStore):
            findings.extend(_compare(store, key, deep, repair))
            for side, copy in store.copies:
                findings.extend(_versions(copy, key, side))
        else:
            state = _check(store, key, deep)
            if isinstance(state, str):
                # the ignore below: str states are Problem literals
                findings.append(Finding(key, state, _explain(state, store.backend)))  # type: ignore[arg-type]
            findings.extend(_versions(store, key, None))
        if on_progress:
            on_progress(key)
    return findings


def _check(store: ObjectStore, key: str, deep: bool) -> ObjectInfo | str:
    """The copy's info when intact, else one of "missing", "corrupt", "unreadable"."""
    try:
        info = store.stat(key)
        if deep:
            with store.get(key) as stream:
                actual = digest_stream(stream)
            if (actual.size, actual.sha256) != (info.size, info.sha256) or (info.sm3 and actual.sm3 != info.sm3):
                return "corrupt"
        return info
    except ObjectNotFound:
        return "missing"
    except IntegrityFailure:
        return "corrupt"
    except StorageError:
        return "unreadable"


def _versions(store: ObjectStore, key: str, side: str | None) -> list[Finding]:
    """Extra versions and delete markers of ``key`` in one store (an unreadable store is reported elsewhere)."""
    try:
        problems = store.version_problems(key)
    except StorageError:
        return []
    where = {"primary": "主副本：", "secondary": "备副本："}.get(side or "", "")
    # the ignore below: codes are Problem literals (extra_versions, delete_marker, …_in_<side>)
    return [Finding(key, code if side is None else f"{code}_in_{side}", where + text)  # type: ignore[arg-type]
            for code, text in problems]


def _compare(store: ReplicatedStore, key: str, deep: bool, repair: bool) -> list[Finding]:
    states = {side: _check(copy, key, deep) for side, copy in store.copies}
    primary, secondary = states["primary"], states["secondary"]
    found: list[Finding] = []
    for side, state in states.items():
        if isinstance(state, str):
            problem = f"{state}_in_{side}"
            # the ignore below: str states are Problem literals
            found.append(Finding(key, problem, _explain(state, side)))  # type: ignore[arg-type]
    if primary == secondary == "missing":
        return [Finding(key, "missing_everywhere", _MEANING["missing_everywhere"])]
    if isinstance(primary, ObjectInfo) and isinstance(secondary, ObjectInfo):
        found.extend(_differences(store, key, primary, secondary, repair))
    elif repair:
        for finding in found:
            good = primary if isinstance(primary, ObjectInfo) else secondary
            if finding.problem.startswith("missing_in_") and isinstance(good, ObjectInfo):
                source, target = ((store.primary, store.secondary) if good is primary
                                  else (store.secondary, store.primary))
                copy_object(source, target, good)
                finding.repaired = True
    return found


def _differences(store: ReplicatedStore, key: str, primary: ObjectInfo, secondary: ObjectInfo,
                 repair: bool) -> list[Finding]:
    if (primary.size, primary.sha256) != (secondary.size, secondary.sha256):
        return [Finding(key, "differing",
                        f"{_MEANING['differing']}：主 {primary.sha256[:12]}…，备 {secondary.sha256[:12]}…")]
    found = []
    # A store that keeps no lock after its limit (Ceph RGW: 2106) holds the capped date: that is no difference.
    capped = [store.capped(i.retain_until) if i.retain_until else None for i in (primary, secondary)]
    if capped[0] != capped[1]:
        finding = Finding(key, "retention_differs",
                          f"{_MEANING['retention_differs']}：主 {_day(primary)}，备 {_day(secondary)}")
        later = max(i.retain_until for i in (primary, secondary) if i.retain_until)
        if repair and later > datetime.now(UTC):
            for copy, info in ((store.primary, primary), (store.secondary, secondary)):
                if info.retain_until != later:
                    copy.set_retention(key, later)
            finding.repaired = True
        found.append(finding)
    if primary.legal_hold != secondary.legal_hold:
        finding = Finding(key, "legal_hold_differs", _MEANING["legal_hold_differs"])
        if repair:
            for copy, info in ((store.primary, primary), (store.secondary, secondary)):
                if not info.legal_hold:
                    copy.set_legal_hold(key, True)
            finding.repaired = True
        found.append(finding)
    return found


def _explain(state: str, where: str) -> str:
    side = {"primary": "主副本", "secondary": "备副本"}.get(where, "对象")
    return f"{side}{_MEANING[state]}"


def _day(info: ObjectInfo) -> str:
    return f"{info.retain_until:%Y-%m-%d}" if info.retain_until else "无"
