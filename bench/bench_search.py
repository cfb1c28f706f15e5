"""Retrieval at scale: bulk index rate, exact-key lookups, two-character text with a date filter, facets.

Generates N items (default 100,000; the issue's figure is ``--items 1000000``) with realistic names
(compound surnames included), valid ID numbers, the schedule's 31 business types, dates over ten
years and an 80-character Chinese note, then measures:

- bulk index rate (generation + analysis + indexing, end to end; target ≥ 2,000 items/s embedded)
  and the worker's upsert rate in batches of 200 with a commit each;
- exact-key lookup p99 in the index and in the catalogue, which answers exact keys in the API
  (target ≤ 10 ms);
- two-character full-text query with a date filter p95 (target ≤ 50 ms);
- facet counts p95 (target ≤ 100 ms);
- peak RSS of the process (resource.getrusage).

    .venv/bin/python bench/bench_search.py [--items 100000] [--queries 300] [--no-catalogue]
                                           [--es-url http://127.0.0.1:9200]
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from archive.classification import load_schedule
from archive.identifiers import id_number_check_char, uscc_check_char
from search.base import CHINA, Range, SearchDocument, SearchIndex, SearchQuery, Visibility

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
            "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
COMPOUND = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐")
GIVEN = ("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉建国志宏海波峰亮文斌宁"
         "浩宇轩然梓涵子怡欣悦思雨佳琪晨阳俊凯博睿诗婷雪梅嘉瑞一鸣天佑若曦")
REGIONS = ("110105", "110108", "310104", "310115", "440106", "440305", "320102", "330106", "510107", "420106",
           "610113", "370102", "410105", "430104", "350102", "120101", "500103", "210102", "220102", "230102")
PLACES = ("朝阳区", "海淀区", "浦东新区", "天河区", "南山区", "鼓楼区", "西湖区", "武侯区", "江汉区", "雁塔区")
UNITS = ("科技有限公司", "建设工程有限公司", "商贸有限责任公司", "医院", "中学", "物业服务有限公司", "银行支行",
         "制造股份有限公司", "餐饮管理有限公司", "街道办事处")
NOTE_PHRASES = (
    "职工本人持身份证原件到柜台办理", "经审核材料齐全符合提取条件", "同意按月对冲还贷", "购房合同及发票已核验",
    "单位经办人提交缴存变更清册", "因离职封存个人账户", "异地转移接续联系函已收到", "贷款已结清并办理抵押注销",
    "申请人配偶共同签字确认", "委托代理人办理并提交授权委托书", "系统自动校验婚姻状况信息", "提取金额转入本人银行卡",
    "退休证明已核验原件留存复印件", "重大疾病诊断证明由三甲医院出具", "租房提取按月限额执行",
    "补缴基数按上年度工资核定",
    "公积金贷款首付比例符合政策", "商转公贷款审批通过", "逾期三期已电话催收", "借款人申请提前部分还款",
    "单位开户登记信息已录入", "统一社会信用代码经核验有效", "资金划转凭证与银行回单一致", "增值收益分配方案经审议",
    "银行对账单核对无误", "柜员复核后归档", "档案材料扫描分辨率符合要求", "影像清晰完整无缺页")
WORDS2 = ("提取", "贷款", "购房", "退休", "租房", "疾病", "转移", "封存", "补缴", "还款", "抵押", "审核", "合同",
          "银行", "单位", "材料", "离职", "配偶", "委托", "对账")

TARGETS = {"index_rate": 2000.0, "key_p99_ms": 10.0, "text_date_p95_ms": 50.0, "facet_p95_ms": 100.0}


def generate(n: int, seed: int = 495, first: int = 1) -> Iterator[SearchDocument]:
    """N documents with ids ``first`` … ``first + n - 1`` (a chunk of a larger set with its own ``seed``)."""
    rng = random.Random(seed)
    schedule = load_schedule()
    types = list(schedule.types.items())
    start = datetime(2016, 1, 1, tzinfo=UTC)
    span = int((datetime(2026, 1, 1, tzinfo=UTC) - start).total_seconds())
    for i in range(first, first + n):
        code, bt = types[rng.randrange(len(types))]
        surname = rng.choice(COMPOUND) if rng.random() < 0.02 else rng.choice(SURNAMES)
        name = surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
        born = date(1955, 1, 1) + timedelta(days=rng.randrange(45 * 365))
        first = f"{rng.choice(REGIONS)}{born:%Y%m%d}{rng.randrange(1000):03d}"
        accepted = start + timedelta(seconds=rng.randrange(span))
        filed = rng.random() < 0.8
        closed = accepted + timedelta(days=rng.randrange(1, 30)) if filed else None
        unit = bt.category in ("GJ", "ZJ")
        uscc = None
        if unit:
            u17 = "91" + rng.choice(REGIONS) + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
            uscc = u17 + uscc_check_char(u17)
        note = ""
        while len(note) < 80:
            note += rng.choice(NOTE_PHRASES) + "，"
        note = (rng.choice(PLACES) + note)[:80]
        year = (closed or accepted).astimezone(CHINA).year
        yield SearchDocument(
            id=i, serial=f"YW{accepted:%Y%m%d}{i:07d}", kind="item" if filed else "case", category=bt.category,
            business_type=code, business_type_name=bt.name, status="filed" if filed else "open",
            branch=f"BR{rng.randrange(1, 21):02d}", accepted_at=accepted, year=year,
            archival_code=f"J001-YW·{year}-{bt.retention.value}-{bt.category}-{i:07d}" if filed else None,
            retention_code=bt.retention.value if filed else None, applicant_name=name,
            applicant_id_number=first + id_number_check_char(first),
            unit_name=rng.choice(PLACES) + rng.choice(UNITS) if unit else None, unit_uscc=uscc,
            loan_contract_no=f"DK{accepted:%Y}{i:08d}" if bt.category == "DK" else None, closed_at=closed,
            expiry_date=date(year + 31, 1, 1) if filed and bt.retention.years else None,
            amount=Decimal(rng.randrange(100_000, 100_000_000)) / 100 if bt.category in ("TQ", "DK") else None,
            text=" ".join(w for w in (name, rng.choice(PLACES) + rng.choice(UNITS) if unit else None, bt.name,
                                      schedule.categories[bt.category].name, note) if w),
        )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], object], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {"p50": statistics.median(samples), "p95": samples[int(0.95 * (len(samples) - 1))],
            "p99": samples[int(0.99 * (len(samples) - 1))]}


def sampled(docs: Iterator[SearchDocument], n: int, into: list[tuple[str, str]]) -> Iterator[SearchDocument]:
    """Pass documents through, keeping (serial, ID number) of about 500 spread over the set."""
    every = max(1, n // 500)
    for d in docs:
        if d.id % every == 0:
            into.append((d.serial, d.applicant_id_number or ""))
        yield d


def bench_index(index: SearchIndex, n: int, queries: int, keys: list[tuple[str, str]]) -> dict[str, float]:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    index.rebuild(sampled(generate(n), n, keys))
    out["index_seconds"] = time.perf_counter() - t0
    out["index_rate"] = n / out["index_seconds"]
    out["rss_after_index_mb"] = peak_rss_mb()

    batch = list(generate(2000, seed=11))
    for d in batch:
        d.id += n
        d.serial = "UP" + d.serial
    t0 = time.perf_counter()
    for i in range(0, len(batch), 200):
        index.upsert(batch[i : i + 200])
    out["upsert_rate"] = len(batch) / (time.perf_counter() - t0)

    rng, everyone = random.Random(3), Visibility.everything()
    branch = Visibility(frozenset({"BR01", "BR02"}), frozenset({"case", "item"}))

    def key_lookup() -> None:
        _, idno = rng.choice(keys)
        assert index.search(SearchQuery(keys={"id_number": idno}), branch).total >= 0

    def text_with_dates() -> None:
        y = rng.randrange(2016, 2025)
        r = Range(datetime(y, rng.randrange(1, 13), 1, tzinfo=CHINA), datetime(y + 1, 1, 1, tzinfo=CHINA))
        index.search(SearchQuery(text=rng.choice(WORDS2), ranges={"accepted_at": r}), everyone)

    def facets_all() -> None:
        index.search(SearchQuery(facets=("category", "business_type", "branch", "year", "status"), page_size=1),
                     everyone)

    def facets_text() -> None:
        index.search(SearchQuery(text=rng.choice(WORDS2), facets=("business_type", "branch", "year"), page_size=1),
                     everyone)

    def relevance() -> None:
        index.search(SearchQuery(text=rng.choice(WORDS2) + " " + rng.choice(WORDS2), sort="relevance"), everyone)

    for name, fn in (("key", key_lookup), ("text_date", text_with_dates), ("facet_all", facets_all),
                     ("facet_text", facets_text), ("relevance_2words", relevance)):
        fn()  # warm
        for stat, v in timed(fn, queries).items():
            out[f"{name}_{stat}_ms"] = v
    out["documents"] = index.count()
    return out


def bench_catalogue(n: int, queries: int, workdir: Path, keys: list[tuple[str, str]]) -> dict[str, float]:
    """Exact keys as the API answers them: from the catalogue (SQLite here), with visibility."""
    from sqlalchemy import insert

    from archive.catalogue.db import Catalogue
    from archive.catalogue.models import Case, Fonds
    from archive.indexing.documents import lookup

    cat = Catalogue(f"sqlite:///{workdir / 'catalogue.db'}")
    cat.upgrade()
    schedule = load_schedule()
    with cat.session() as s:
        s.add(Fonds(code="J001", name="bench"))
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    rows: list[dict[str, object]] = []
    with cat.engine.begin() as conn:
        for d in generate(n):
            rows.append({"serial": d.serial, "fonds_id": 1, "category": d.category, "business_type": d.business_type,
                         "status": "open", "applicant_name": d.applicant_name,
                         "applicant_id_number": d.applicant_id_number, "unit_name": d.unit_name,
                         "unit_uscc": d.unit_uscc, "loan_contract_no": d.loan_contract_no, "branch": d.branch,
                         "clerk": "bench", "accepted_at": d.accepted_at, "created_at": now, "updated_at": now})
            if len(rows) == 10_000:
                conn.execute(insert(Case), rows)
                rows.clear()
        if rows:
            conn.execute(insert(Case), rows)
    load_seconds = time.perf_counter() - t0
    rng = random.Random(5)
    branch = Visibility(frozenset({"BR01", "BR02"}), frozenset({"case", "item"}))

    def by_id_number() -> None:
        _, idno = rng.choice(keys)
        with cat.session() as s:
            lookup(s, schedule, SearchQuery(keys={"id_number": idno}), branch)

    def by_serial() -> None:
        serial, _ = rng.choice(keys)
        with cat.session() as s:
            lookup(s, schedule, SearchQuery(keys={"serial": serial}), Visibility.everything())

    out = {"catalogue_load_seconds": load_seconds}
    for name, fn in (("catalogue_id_number", by_id_number), ("catalogue_serial", by_serial)):
        fn()
        for stat, v in timed(fn, queries).items():
            out[f"{name}_{stat}_ms"] = v
    cat.dispose()
    return out


def report(title: str, r: dict[str, float]) -> None:
    print(f"\n{title}")
    for k, v in r.items():
        print(f"  {k:32s} {v:12.2f}")


def verdicts(r: dict[str, float]) -> None:
    checks = [
        ("bulk index rate ≥ 2,000 items/s", r["index_rate"] >= TARGETS["index_rate"], f"{r['index_rate']:.0f}/s"),
        ("exact-key p99 ≤ 10 ms (index)", r["key_p99_ms"] <= TARGETS["key_p99_ms"], f"{r['key_p99_ms']:.2f} ms"),
        ("2-char text + date filter p95 ≤ 50 ms", r["text_date_p95_ms"] <= TARGETS["text_date_p95_ms"],
         f"{r['text_date_p95_ms']:.2f} ms"),
        ("facet counts p95 ≤ 100 ms (all docs)", r["facet_all_p95_ms"] <= TARGETS["facet_p95_ms"],
         f"{r['facet_all_p95_ms']:.2f} ms"),
        ("facet counts p95 ≤ 100 ms (2-char text)", r["facet_text_p95_ms"] <= TARGETS["facet_p95_ms"],
         f"{r['facet_text_p95_ms']:.2f} ms"),
    ]
    if "catalogue_id_number_p99_ms" in r:
        checks.append(("exact-key p99 ≤ 10 ms (catalogue, as the API answers)",
                       r["catalogue_id_number_p99_ms"] <= TARGETS["key_p99_ms"],
                       f"{r['catalogue_id_number_p99_ms']:.2f} ms"))
    for what, ok, value in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {what}: {value}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--no-catalogue", action="store_true", help="skip the catalogue exact-key lookups")
    p.add_argument("--es-url", default=None, help="also run against this Elasticsearch")
    p.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one, removed)")
    args = p.parse_args(argv)

    from search.embedded import EmbeddedIndex

    workdir = args.dir or Path(tempfile.mkdtemp(prefix="bench-search-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        print(f"items: {args.items:,}; queries per figure: {args.queries}; work dir: {workdir}")
        embedded, keys = EmbeddedIndex(workdir / "index"), []
        r = bench_index(embedded, args.items, args.queries, keys)
        embedded.close()
        size = sum(f.stat().st_size for f in (workdir / "index").rglob("*") if f.is_file())
        r["index_size_mb"] = size / 2**20
        if not args.no_catalogue:
            r |= bench_catalogue(args.items, args.queries, workdir, keys)
        r["peak_rss_mb"] = peak_rss_mb()
        report("embedded (tantivy)", r)
        verdicts(r)
        if args.es_url:
            from search.elasticsearch import ElasticsearchIndex

            es = ElasticsearchIndex(args.es_url, prefix="archive-bench", timeout=120)
            er = bench_index(es, args.items, args.queries, keys=[])
            report("elasticsearch", er)
            verdicts(er)
            es.client.indices.delete(index="archive-bench-items-*", ignore_unavailable=True)
            es.client.indices.delete_index_template(name=es.template)
            es.close()
    finally:
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
