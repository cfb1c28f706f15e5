"""Chinese text analysis, done once in Python so every backend indexes and queries the same terms.

Indexing: text is NFKC-normalised (full-width → half-width) and lower-cased, then cut into runs of CJK
characters and runs of Latin letters/digits. A CJK run gives every character (unigram) and every
pair of neighbours (bigram); a Latin/digit run is one term. ``公积金提取`` → 公 积 金 提 取 公积 积金 金提 提取.

Querying: a one-character word needs its unigram; a longer CJK word needs all its bigrams, so
``提取`` matches only text where 提 and 取 stand together, and names and words outside any dictionary
(``欧阳娜娜``, ``商转公``) match without one. No dictionary, no jieba.

Query syntax: words separated by spaces must all match; ``"…"`` groups words that contain spaces;
``-word`` excludes. Anything else is punctuation and separates words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from search.errors import SearchInvalid

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_RUNS = re.compile(rf"[{_CJK}]+|[0-9a-z]+")
_CJK_RUN = re.compile(rf"[{_CJK}]+")

MAX_QUERY_CHARS = 200
MAX_QUERY_WORDS = 20


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def index_tokens(text: str) -> list[str]:
    """Terms indexed for ``text``: CJK unigrams and bigrams, whole Latin/digit words.

    Order carries no meaning: both backends index term frequencies only, no positions.
    """
    out: list[str] = []
    for run in _RUNS.findall(normalise(text)):
        if run[0] < "\u3400":  # Latin letters or digits
            out.append(run)
        else:
            out.extend(run)
            out.extend(map(str.__add__, run, run[1:]))
    return out


def index_text(text: str) -> str:
    """The terms as one space-separated string, for a backend's whitespace tokenizer."""
    return " ".join(index_tokens(text))


def word_terms(word: str) -> list[str]:
    """Terms a document must contain to match one query word (duplicates removed, order kept)."""
    out: list[str] = []
    for run in _RUNS.findall(normalise(word)):
        if _CJK_RUN.fullmatch(run) and len(run) > 1:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            out.append(run)
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class TextQuery:
    """Parsed free text: every group in ``must`` matches, no group in ``must_not`` does.

    A group is the terms of one word, all required.
    """

    must: tuple[tuple[str, ...], ...]
    must_not: tuple[tuple[str, ...], ...]


def parse_text(text: str) -> TextQuery:
    """Parse the free-text query, or raise SearchInvalid(code="invalid_query") saying what is wrong."""
    if len(text) > MAX_QUERY_CHARS:
        raise _invalid(f"检索词过长：最多 {MAX_QUERY_CHARS} 个字符", text)
    if text.count('"') % 2:
        raise _invalid("检索词中的双引号不成对，请补全或删除引号", text)
    must: list[tuple[str, ...]] = []
    must_not: list[tuple[str, ...]] = []
    for quoted, plain in re.findall(r'(-?"[^"]*")|(\S+)', text):
        word = quoted or plain
        negate = word.startswith("-")
        body = word[1:] if negate else word
        terms = tuple(word_terms(body.strip('"')))
        if not terms:
            if negate:
                raise _invalid(f"排除符号“-”后面缺少要排除的词：{word}", text)
            continue  # punctuation only
        (must_not if negate else must).append(terms)
    if len(must) + len(must_not) > MAX_QUERY_WORDS:
        raise _invalid(f"检索词过多：最多 {MAX_QUERY_WORDS} 个", text)
    if not must and not must_not:
        raise _invalid("检索词中没有可检索的文字或数字", text)
    return TextQuery(tuple(must), tuple(must_not))


def _invalid(message: str, text: str) -> SearchInvalid:
    return SearchInvalid(message, code="invalid_query", detail={"field": "q", "value": text})
