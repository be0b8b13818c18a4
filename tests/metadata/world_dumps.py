"""Small Wikipedia dumps of other languages, written by the tests in the real dump format (the
structure of ../shared/data/wikipedia's sample: <mediawiki> with <siteinfo> and its localised
<namespaces>, then <page>s with <revision>), their page views and an OMW tab file. Used by
tests/metadata/test_world_build.py (Spark-free) and tests/spark/test_build_metadata_world.py,
which check the same hand-computed lists (``EXPECTED``)."""

from __future__ import annotations

import bz2
import hashlib
from xml.sax.saxutils import escape

NUMBERS = [str(i) for i in range(100)]
LONG = "x" * 257

# namespaces -2 (Media), 6 (File), 14 (Category) as each Wikipedia names them
NAMESPACES = {"de": ("Medium", "Datei", "Kategorie"), "ja": ("メディア", "ファイル", "Category"),
              "zh": ("Media", "File", "Category"), "th": ("สื่อ", "ไฟล์", "หมวดหมู่")}

PAGES = {
    "de": [("Katze", 0, None, "'''Die Katze''' schläft. Die Katze frisst Fisch.<ref>Quelle Buch</ref>\n"
                              "[[Datei:Katze.jpg|mini|Eine graue Katze]]\nDer [[Hund]] bellt.\n"
                              "[[Kategorie:Tiere]]"),
           ("Hund", 0, None, "Der Hund bellt laut. Die Katze schläft.\n{{Infobox Tier|Name=Hund}}"),
           ("Kater", 0, "Katze", "#WEITERLEITUNG [[Katze]]"),
           ("Diskussion:Katze", 1, None, "Katze Katze Katze")],
    "ja": [("猫", 0, None, "猫が魚を食べる。犬が猫を見る。\n[[ファイル:Cat.jpg|サムネイル|白い猫]]\n[[Category:動物]]"),
           ("犬", 0, None, "東京の猫は魚が好きです。\n「猫」と犬")],
    "zh": [("北京", 0, None, "北京是中国的首都。我爱北京。\n[[File:Beijing.jpg|thumb|北京的天安门]]"),
           ("上海", 0, None, "上海是中国的城市。我爱上海。")],
    "th": [("แมว", 0, None, "แมวกินปลา แมวกินข้าว"),
           ("หมา", 0, None, "หมากินข้าว")],
}

PAGEVIEWS = {
    "de": ["de Katze 50 1000", "de.m Katze 10 500", "de Hund 30 0", "de Maus 30 0", "de Diskussion:Katze 99 0",
           "de Null 0 0", "en Katze 1000 0", "de Die_Katze 20 0", "de !!! 40 0", "de %s 7 0" % LONG,
           "de Vogel 5 0", "de Fuchs 3 0"],
    "ja": ["ja 猫 100 0", "ja.m 猫 50 0", "ja 犬 80 0", "ja 東京タワー 10 0", "ja ノート:猫 500 0", "ja.m 魚 0 0",
           "en Cat 999 0"],
    "zh": ["zh 北京 300 0", "zh 故宫 150 0", "zh.m 长城 150 0", "zh 天坛 20 0", "zh 颐和园 10 0",
           "zh-yue 北京 999 0"],
}

OMW_JPN = "\n".join([
    "# Japanese\tjpn\thttp://compling.hss.ntu.edu.sg/wnja/\tCC BY-SA",
    "02121620-n\tjpn:lemma\t猫", "02121620-n\tjpn:def\t0\t小型の哺乳類", "02121620-n\tjpn:lemma\tネコ+科",
    "02084071-n\tjpn:lemma\t犬_小屋", "02084071-n\tjpn:lemma\t猫", "02084071-n\tcmn:lemma\t猫咪",
    "00001740-n\tjpn:lemma\t!!!", "00001741-n\tjpn:lemma\t" + LONG, "00001742-n\tjpn:lemma\t  ", "bad line", ""])

# per language: build config (tiny caps so the shares and caps bite), the counts, the list
CONFIG = {
    "de": {"world_unigram_share": 0.5, "bigram_min_count": 2, "bigram_min_pmi": 0.0, "world_bigram_cap": 2,
           "world_title_cap": 3},
    "ja": {"world_unigram_share": 0.5, "bigram_min_count": 1, "bigram_min_pmi": 0.0, "world_bigram_cap": 3},
    "zh": {"world_unigram_share": 0.5, "world_unigram_cap": 3, "bigram_min_count": 2, "bigram_min_pmi": 0.0,
           "world_bigram_cap": 2},
    "th": {"world_unigram_share": 0.5, "bigram_min_count": 1, "bigram_min_pmi": 0.0, "world_bigram_cap": 1},
}

UNIGRAMS = {
    "de": {"Die": 3, "Katze": 3, "schläft": 2, "Der": 2, "Hund": 2, "bellt": 2, "frisst": 1, "Fisch": 1, "laut": 1},
    "ja": {"猫": 4, "が": 3, "魚": 2, "を": 2, "食べる": 1, "犬": 2, "見る": 1, "東京": 1, "の": 1, "は": 1, "好き": 1,
           "です": 1, "と": 1},
    "zh": {"北京": 2, "上海": 2, "是": 2, "中国": 2, "的": 2, "我": 2, "爱": 2, "首都": 1, "城市": 1},
    "th": {"แมว": 2, "กิน": 1, "ปลา": 1, "กินข้าว": 2, "หมา": 1},
}
BIGRAMS = {
    "de": {("Die", "Katze"): 3, ("Katze", "schläft"): 2, ("Der", "Hund"): 2, ("Hund", "bellt"): 2,
           ("Katze", "frisst"): 1, ("frisst", "Fisch"): 1, ("bellt", "laut"): 1},
    "ja": {(a, b): 1 for a, b in [("猫", "が"), ("が", "魚"), ("魚", "を"), ("を", "食べる"), ("犬", "が"), ("が", "猫"),
                                  ("猫", "を"), ("を", "見る"), ("東京", "の"), ("の", "猫"), ("猫", "は"), ("は", "魚"),
                                  ("魚", "が"), ("が", "好き"), ("好き", "です"), ("と", "犬")]},
    "zh": {("北京", "是"): 1, ("是", "中国"): 2, ("中国", "的"): 2, ("的", "首都"): 1, ("我", "爱"): 2,
           ("爱", "北京"): 1, ("上海", "是"): 1, ("的", "城市"): 1, ("爱", "上海"): 1},
    "th": {("แมว", "กิน"): 1, ("กิน", "ปลา"): 1, ("ปลา", "แมว"): 1, ("แมว", "กินข้าว"): 1, ("หมา", "กินข้าว"): 1},
}
EXPECTED = {
    # unigrams: int(9 * 0.5) = 4 of Die, Katze (3), Der, Hund, bellt, schläft (2): the tie cut by the string;
    # bigrams (count >= 2): Der Hund = Hund bellt (PMI log(2*17*17/(12*2*2))) above Die Katze, Katze schläft
    # (log(8.03)), cap 2; titles: Katze (dup), !!! (punctuation), Hund (dup), then 3 (the cap) of Maus,
    # Die Katze, Vogel, Fuchs; the 257-character title is dropped
    "de": NUMBERS + ["Die", "Katze", "Der", "Hund"] + ["Der Hund", "Hund bellt"] + ["Maus", "Die Katze", "Vogel"],
    # WordNet (OMW, sorted; !!! and the 257 x dropped), then int(13 * 0.5) = 6 new unigrams (猫 is WordNet's),
    # bigrams joined without a space: PMI highest for the smallest c_a * c_b (1: 好きです, 東京の; 2: と犬 ...),
    # cap 3; titles: int(3 * 0.76) = 2 examined of 猫 (150, dup), 犬 (dup), 東京タワー: quota 2 not reached
    "ja": NUMBERS + ["ネコ科", "犬 小屋", "猫"] + ["が", "を", "犬", "魚", "です", "と"] + ["好きです", "東京の", "と犬"]
    + ["東京タワー"],
    # unigrams: min(3, int(9 * 0.5)) = 3 (the cap); bigrams count >= 2 (all PMI log(2*16*16/(12*2*2))), cap 2;
    # titles: int(5 * 0.76) = 3 added: 北京 (dup), 故宫 / 长城 (150, by the string), 天坛; 颐和园 over the share
    "zh": NUMBERS + ["上海", "中国", "北京"] + ["中国的", "我爱"] + ["故宫", "长城", "天坛"],
    # int(5 * 0.5) = 2 unigrams; bigram cap 1: กินปลา (both words once: the highest PMI)
    "th": NUMBERS + ["กินข้าว", "แมว"] + ["กินปลา"],
}


def page_xml(i: int, title: str, ns: int, redirect: str | None, text: str) -> str:
    red = '    <redirect title="%s" />\n' % escape(redirect) if redirect else ""
    body = text.encode("utf-8")
    return ("  <page>\n    <title>%s</title>\n    <ns>%d</ns>\n    <id>%d</id>\n%s    <revision>\n"
            "      <id>%d</id>\n      <parentid>%d</parentid>\n      <timestamp>2024-01-0%dT00:00:00Z</timestamp>\n"
            "      <contributor>\n        <username>Test</username>\n        <id>1</id>\n      </contributor>\n"
            "      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
            '      <text xml:space="preserve" bytes="%d">%s</text>\n      <sha1>%s</sha1>\n    </revision>\n'
            "  </page>\n" % (escape(title), ns, 10 + i, red, 100 + i, 99 + i, 1 + i % 9, len(body), escape(text),
                             hashlib.sha1(body).hexdigest()[:31]))


def dump_xml(lang: str) -> bytes:
    media, file, category = NAMESPACES[lang]
    names = [("-2", media), ("-1", "Special"), ("0", ""), ("1", "Talk"), ("6", file), ("10", "Template"),
             ("14", category)]
    ns = "".join('      <namespace key="%s" case="first-letter"%s\n' % (k, " />" if not v else ">%s</namespace>" % v)
                 for k, v in names)
    head = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="0.10" xml:lang="%s">\n'
            "  <siteinfo>\n    <sitename>Wikipedia</sitename>\n    <dbname>%swiki</dbname>\n"
            "    <base>https://%s.wikipedia.org/wiki/Main_Page</base>\n    <generator>MediaWiki 1.42</generator>\n"
            "    <case>first-letter</case>\n    <namespaces>\n%s    </namespaces>\n  </siteinfo>\n"
            % (lang, lang, lang, ns))
    pages = "".join(page_xml(i, *p) for i, p in enumerate(PAGES[lang]))
    return (head + pages + "</mediawiki>\n").encode("utf-8")


def write_inputs(tmp_path, lang: str) -> dict:
    """The dump (bz2), its page views and (ja) the OMW file under ``tmp_path``: paths by kind."""
    out = {"dump": tmp_path / ("%swiki-test-pages-articles.xml.bz2" % lang)}
    out["dump"].write_bytes(bz2.compress(dump_xml(lang), 9))
    if lang in PAGEVIEWS:
        out["pageviews"] = tmp_path / ("pageviews-%s" % lang)
        out["pageviews"].write_text("\n".join(PAGEVIEWS[lang]) + "\n", encoding="utf-8")
    if lang == "ja":
        out["omw"] = tmp_path / "wn-data-jpn.tab"
        out["omw"].write_text(OMW_JPN, encoding="utf-8")
    return {k: str(v) for k, v in out.items()}
