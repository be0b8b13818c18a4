"""The report's worldwide view (issue #17, metaclip_spark/report/languages.py): a hand-made
worldwide run folder of four languages (entry counts with ``lang``, stats/match.json
``mode``/``languages``/``metadata``, stats/balance.json ``languages``/``tail_share_en``) ->
the per-language table, the curve points, the metadata check, global ids in the other
sections; an English run is unchanged by the ``lang`` column."""

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from metaclip_spark.metadata.languages import LanguageSpace
from metaclip_spark.report import languages
from metaclip_spark.report import page as report
from metaclip_spark.run.schema import ENTRY_COUNTS_SCHEMA, POOL_SCHEMA
from tests.report.runs import make_run, parse, rows_of

# per language: entries (positions = entry ids) and their counts; dropped entries count 0
ENTRIES = {
    "en": (["dog", "!!", "cat", "photo", "red"], [5, 0, 3, 9, 1]),                      # 18 matches
    "de": (["hund", "x" * 300, "katze"], [4, 0, 7]),                                     # 11
    "ja": (["猫", "犬", "。。", "、"], [1, 10, 0, 0]),                                    # 11 (tie with de)
    "zh": (["中国", "猫", "长" * 300, "北京", "上海", "照片"], [30, 2, 0, 1, 1, 6]),        # 40
}
ORDER = ("en", "de", "ja", "zh")          # language-space order: en first, then sorted
# stage 1: texts kept by the language step, pool rows; metadata check
MATCH_LANGS = {"en": (40, 12), "de": (30, 6), "ja": (25, 5), "zh": (50, 20)}
METADATA = {"en": (5, 0, 1), "de": (3, 1, 0), "ja": (4, 0, 2), "zh": (6, 1, 0)}
# English t = 4: tail share p = (3 + 1) / 18. MetaCLIP 2's p_to_t on each language's sorted counts:
#   zh [0,1,1,2,6,30] cum [0,.025,.05,.1,.25,1] nearest .2222 is .25 -> t 6; tail (<6) 4/40; head (>6) 1
#   de [0,4,7] cum [0,.364,1] -> .364 -> t 4; tail (<4) 0; head (>4) 1
#   ja [0,0,1,10] cum [0,0,.091,1] -> .091 -> t 1; tail (<1) 0; head (>1) 1
#   en t 4: tail 4/18; head (>4) 2
P_EN = 4 / 18
BALANCE_LANGS = {  # pool, t, tail_share, head_entries, curated, expected
    "en": (12, 4.0, 4 / 18, 2, 7, 7.25), "de": (6, 4.0, 0.0, 1, 4, 4.0),
    "ja": (5, 1.0, 0.0, 1, 2, 2.1), "zh": (20, 6.0, 0.1, 1, 9, 8.5)}
POOL = [("zh", [0, 5]), ("en", [0, 3]), ("de", [2]), ("ja", [1]), ("zh", [1])]   # the first pool rows


def _entry_counts(langs=ORDER):
    rows = [{"entry_id": i, "entry": e, "count": c, "lang": k}
            for k in langs for i, (e, c) in enumerate(zip(*ENTRIES[k]))]
    return pa.Table.from_pylist(rows, ENTRY_COUNTS_SCHEMA)


def make_worldwide_run(root, stage2=True):
    (root / "stats").mkdir(parents=True)
    pool_rows = sum(m for _, m in MATCH_LANGS.values())
    match = {"stage": "match", "mode": "worldwide", "inputs": 2, "inputs_failed": 0,
             "counts": {"pool_rows": pool_rows, "matched": pool_rows}, "pool_rows": pool_rows,
             "entries": 18, "matches": 80, "lid_model": "lid.176.ftz",
             "languages": {k: {"texts": t, "matched": m, "entries": len(ENTRIES[k][0]),
                               "entries_matched": sum(c > 0 for c in ENTRIES[k][1])}
                           for k, (t, m) in MATCH_LANGS.items()},
             "metadata": {k: {"entries": e, "dropped_too_long": lo, "dropped_punctuation_only": pu}
                          for k, (e, lo, pu) in METADATA.items()}}
    (root / "stats" / "match.json").write_text(json.dumps(match))
    (root / "entry_counts").mkdir()
    pq.write_table(_entry_counts(), root / "entry_counts" / "entry_counts.parquet")
    rows = []
    for i in range(pool_rows):
        lang, ids = POOL[i % len(POOL)]
        rows.append({"url": "http://img.test/%d.jpg" % i, "text": "text %d" % i, "entry_ids": ids,
                     "page_url": "http://page.test/", "lid_score": 0.9, "source": "s.warc.gz", "record_id": None,
                     "record_offset": i, "key_hash": 1000 + i, "image_id": None, "text_hash": None, "crawl": "c",
                     "text_field": "alt", "lang": lang})
    (root / "pool").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, POOL_SCHEMA), root / "pool" / "part-00000.parquet")
    if not stage2:
        return root
    (root / "curated").mkdir()
    pq.write_table(pa.Table.from_pylist(rows[::2], POOL_SCHEMA), root / "curated" / "part-00000.parquet")
    bc = [{"entry_id": i, "entry": e, "count": c, "p": float(BALANCE_LANGS[k][1]) / max(c, BALANCE_LANGS[k][1]),
           "balanced_count": min(c, int(BALANCE_LANGS[k][1])), "lang": k}
          for k in ORDER for i, (e, c) in enumerate(zip(*ENTRIES[k]))]
    (root / "balance_counts").mkdir()
    pq.write_table(pa.Table.from_pylist(bc), root / "balance_counts" / "balance_counts.parquet")
    bal = {"stage": "balance", "pools": [str(root)], "t": 4.0, "t_source": "tail_share", "seed": 7,
           "pool_rows": pool_rows, "curated_rows": 22, "expected_size": 21.85, "tail_share_en": P_EN,
           "languages": {k: {"pool": po, "matches": sum(ENTRIES[k][1]), "t": t, "tail_share": ts, "head_entries": h,
                             "curated": cu, "expected": ex}
                         for k, (po, t, ts, h, cu, ex) in BALANCE_LANGS.items()}}
    (root / "stats" / "balance.json").write_text(json.dumps(bal))
    return root


@pytest.fixture
def world(tmp_path):
    return make_worldwide_run(tmp_path / "world")


# --- the data ---------------------------------------------------------------------------------------------------

def test_space_order_gives_global_ids_whatever_the_row_order():
    shuffled = _entry_counts(("zh", "ja", "en", "de"))
    ec, space = languages.space_order(shuffled)
    assert space == LanguageSpace({"en": 5, "de": 3, "ja": 4, "zh": 6})
    assert ec.column("entry_id").to_pylist() == list(range(18))
    assert ec.column("count").to_pylist() == sum((ENTRIES[k][1] for k in ORDER), [])
    assert ec.column("entry").to_pylist()[5:9] == ["hund", "x" * 300, "katze", "猫"]
    # English with a lang column: the English ids, unchanged; no lang column: no space
    en = _entry_counts(("en",))
    got, sp = languages.space_order(en.take([3, 0, 4, 1, 2]))
    assert got.column("entry_id").to_pylist() == [0, 1, 2, 3, 4] and sp == LanguageSpace.english(5)
    assert not languages.is_worldwide({"mode": "english"}, sp)
    assert languages.space_order(en.drop_columns(["lang"]))[1] is None
    assert languages.is_worldwide({"mode": "worldwide"}, None) and languages.is_worldwide({}, space)


def test_curve_points_of_one_language():
    cv = languages.curve(ENTRIES["zh"][1])          # matched counts sorted: 1, 1, 2, 6, 30 (sum 40)
    assert cv["x"].tolist() == [1, 2, 3, 4, 5]
    assert cv["share"].tolist() == [1 / 40, 2 / 40, 4 / 40, 10 / 40, 40 / 40] == [0.025, 0.05, 0.1, 0.25, 1.0]
    assert cv["frac"].tolist() == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert languages.curve([0, 0])["x"].size == 0


def test_language_rows_fall_back_to_the_entry_counts():
    counts = {k: np.array(c) for k, (_, c) in ENTRIES.items()}
    # stage 1 only: pool from match.json, matches and entries from the counts; no t
    rows = languages.language_rows({"languages": {"en": {"texts": 40, "matched": 12}}}, None, counts)
    assert [r["lang"] for r in rows] == ["zh", "en", "de", "ja"]
    en = rows[1]
    assert (en["texts"], en["pool"], en["entries"], en["entries_matched"], en["matches"]) == (40, 12, 5, 4, 18)
    assert en["t"] is None and en["head_entries"] is None and en["tail_share"] is None and en["curated"] is None
    assert rows[0]["texts"] is None and rows[0]["share"] == 0.5
    # a balance.json with t only: head entries and tail share from the counts
    rows = languages.language_rows({}, {"languages": {"zh": {"t": 6}}}, counts)
    assert (rows[0]["head_entries"], rows[0]["tail_share"]) == (1, 0.1)


# --- the page ---------------------------------------------------------------------------------------------------

TABLE = [  # by matches descending, ties (de, ja: 11) by language code; matches 80 in all
    ["1", "zh", "50", "20", "6", "5", "40", "50.00%", "6", "1", "10.00%", "9", "8.50", "45.00%"],
    ["2", "en", "40", "12", "5", "4", "18", "22.50%", "4", "2", "22.22%", "7", "7.25", "58.33%"],
    ["3", "de", "30", "6", "3", "2", "11", "13.75%", "4", "1", "0.00%", "4", "4", "66.67%"],
    ["4", "ja", "25", "5", "4", "2", "11", "13.75%", "1", "1", "0.00%", "2", "2.10", "40.00%"],
    # sums; tail share (0.1 * 40 + 4/18 * 18) / 80; keep rate 22 / 43
    ["", "all languages", "145", "43", "18", "13", "80", "100.00%", "n/a", "5", "10.00%", "22", "21.85", "51.16%"]]
METADATA_TABLE = [  # language-space order, then the sums
    ["en", "5", "0", "1", "4"], ["de", "3", "1", "0", "2"], ["ja", "4", "0", "2", "2"], ["zh", "6", "1", "0", "5"],
    ["all languages", "18", "2", "3", "13"]]


def test_worldwide_section_exact(world):
    raw, page = parse(report.write_report(str(world), input_files=0))
    tables = page.tables["languages"]
    assert tables[0][0] == languages.HEADERS
    assert rows_of(tables[0]) == TABLE
    assert rows_of(tables[1]) == METADATA_TABLE
    assert rows_of(tables[1])[0][0] == "en" and tables[1][0][2] == "dropped: longer than 256 characters"
    assert "English's tail share p = <b>22.22%</b>" in raw
    assert "Cumulative share of matches, top 4 languages by matches" in raw
    # the section sits after the summary; its figure is one more embedded PNG
    ids = re.findall(r'<section id="([^"]+)"', raw)
    assert ids.index("languages") == ids.index("summary") + 1
    assert len(page.imgs) == 4 and all(s.startswith("data:image/png;base64,") for s in page.imgs)
    # the header names the languages; the English LID re-read is skipped
    assert "<dd>4 languages: en, de, ja, zh</dd>" in raw
    assert "kept if the text contains at least one metadata entry of its language" in raw
    assert "the input re-read of this section applies English mode" in raw


def test_worldwide_other_sections_use_global_ids(world):
    _, page = parse(report.write_report(str(world), input_files=0))
    summary = dict(tuple(r) for r in rows_of(page.tables["summary"][0]))
    assert summary["metadata entries"] == "18" and summary["total matches (sum of counts)"] == "80"
    # at each language's t_lang (en 4, de 4, ja 1, zh 6): head en 5, 9 / de 7 / ja 10 / zh 30; tail en 3, 1 / zh 1, 1, 2
    assert summary["t"] == "4" and summary["head entries (count > t)"] == "5"
    assert summary["share of matches in head entries"] == "76.25%"                      # 61 / 80
    assert summary["tail share (matches in entries with count < t)"] == "10.00%"       # 8 / 80
    top = rows_of(page.tables["top-entries"][0])
    # global ids: en 0-4, de 5-7, ja 8-11, zh 12-17; p from balance_counts (lang, entry_id) of each language
    assert [(r[1], r[2], r[3]) for r in top[:4]] == [("12", "中国", "30"), ("9", "犬", "10"), ("3", "photo", "9"),
                                                     ("7", "katze", "7")]
    assert top[0][5] == "%.6f" % (6 / 30) and top[1][5] == "%.6f" % (1 / 10)
    assert [r[6] for r in top[:4]] == ["6", "1", "4", "4"]                              # min(count, t_lang)
    samples = rows_of(page.tables["samples"][0])
    # pool rows (zh [0, 5]), (en [0, 3]), (de [2]), (ja [1]), (zh [1]): each language's own entries
    assert [s[3] for s in samples[:5]] == ["中国 照片", "dog photo", "katze", "犬", "猫"]
    # head entries highlighted at their language's t_lang: 中国 30 > 6, 照片 6 = t_zh (English t 4 would mark it),
    # dog 5 > 4, photo 9 > 4, katze 7 > 4, 犬 10 > 1, 猫 (zh) 2 <= 6
    raw = open(world / "report" / "index.html", encoding="utf-8").read()
    heads = re.findall(r'<code class="head" title="count [^"]+">([^<]+)</code>', raw)
    assert sorted(set(heads)) == sorted(["中国", "dog", "photo", "katze", "犬"])


def test_worldwide_stage1_only(tmp_path):
    run = make_worldwide_run(tmp_path / "w1", stage2=False)
    raw, page = parse(report.write_report(str(run), input_files=0))
    rows = rows_of(page.tables["languages"][0])
    assert [r[1] for r in rows] == ["zh", "en", "de", "ja", "all languages"]
    assert rows[0] == ["1", "zh", "50", "20", "6", "5", "40", "50.00%", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a"]
    assert "Stage 2 has not been run: t_lang" in raw
    assert rows_of(page.tables["languages"][1]) == METADATA_TABLE


def _page_without_clock(path):
    return re.sub(r"<dd>\d{4}-\d\d-\d\d \d\d:\d\d UTC</dd>", "", open(path, encoding="utf-8").read())


@pytest.mark.parametrize("stage2", [False, True])
def test_english_report_unchanged_by_the_lang_column(tmp_path, stage2):
    run = make_run(tmp_path / "en", stage2=stage2)
    before = _page_without_clock(report.write_report(str(run), out_path=str(tmp_path / "a.html"), input_files=0))
    path = run / "entry_counts" / "entry_counts.parquet"
    t = pq.read_table(path)
    pq.write_table(t.append_column("lang", pa.array(["en"] * t.num_rows)), path)
    match = json.loads((run / "stats" / "match.json").read_text())
    (run / "stats" / "match.json").write_text(json.dumps(dict(match, mode="english")))
    after = _page_without_clock(report.write_report(str(run), out_path=str(tmp_path / "b.html"), input_files=0))
    assert after == before and 'id="languages"' not in after
