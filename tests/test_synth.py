"""The synthetic corpus generator: determinism, WARC/WAT structure, and the truth checked
against an independent html.parser derivation (docs/semantics.md section 2) from the WARC bytes and
against the WAT Links."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import html.parser
import json
import os
import re
import subprocess
import sys
import time
import zlib
from urllib.parse import urljoin, urlsplit

import pytest
from warcio.archiveiterator import ArchiveIterator

from metaclip_spark import synth
from metaclip_spark.metadata import defaults

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------------------
# Independent derivation (docs/semantics.md section 2), written without the generator's model


_HTTP_CHARSET = re.compile(r"charset\s*=\s*[\"']?([^\s;\"']+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.I)


def spec_decode(body: bytes, content_type: str | None) -> str:
    label = None
    m = _HTTP_CHARSET.search(content_type or "")
    if m:
        label = m.group(1)
    else:
        m = _META_CHARSET.search(body[:4096])
        if m:
            label = m.group(1).decode("ascii")
    try:
        codecs.lookup(label or "utf-8")
    except LookupError:
        label = None
    return body.decode(label or "utf-8", errors="replace")


class _ImgParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.imgs: list[dict] = []
        self.base: str | None = None
        self.lang: str | None = None

    def handle_starttag(self, tag, attrs):
        first: dict = {}
        for k, v in attrs:
            first.setdefault(k, v)
        if tag == "img":
            self.imgs.append(first)
        elif tag == "base" and self.base is None and first.get("href") is not None:
            self.base = first["href"]
        elif tag == "html" and self.lang is None:
            self.lang = first.get("lang")


def parse_html(text: str) -> _ImgParser:
    p = _ImgParser()
    p.feed(text)
    p.close()
    return p


def derive_pairs(srcs_alts, base_href, page_url):
    """Rules 3-5 of docs/semantics.md section 2 from (src, alt) attribute values."""
    base = urljoin(page_url, base_href) if base_href is not None else page_url
    out, seen = [], set()
    for src, alt in srcs_alts:
        if src is None or alt is None:
            continue
        text = " ".join(alt.split())
        s = src.strip()
        if not text or not s:
            continue
        url = urljoin(base, s)
        if urlsplit(url).scheme not in ("http", "https"):
            continue
        if (url, text) not in seen:
            seen.add((url, text))
            out.append([url, text])
    return out


# --------------------------------------------------------------------------------------
# Reading helpers


def gzip_members(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """(offset, member bytes, inflated bytes) of every gzip member."""
    out, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(zlib.MAX_WBITS + 16)
        inflated = d.decompress(data[pos:])
        assert d.eof
        n = len(data) - pos - len(d.unused_data)
        out.append((pos, data[pos:pos + n], inflated))
        pos += n
    return out


def read_warc(path):
    recs = []
    with open(path, "rb") as fh:
        it = ArchiveIterator(fh)
        for rec in it:
            body = rec.content_stream().read()
            recs.append({"offset": it.get_record_offset(), "type": rec.rec_type,
                         "id": rec.rec_headers.get_header("WARC-Record-ID"),
                         "uri": rec.rec_headers.get_header("WARC-Target-URI"),
                         "headers": rec.rec_headers, "http": rec.http_headers, "body": body})
    return recs


def read_truth(path):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def corpus_files(d, m):
    for part in m["parts"]:
        yield (os.path.join(d, part["warc"]), os.path.join(d, part["wat"]),
               os.path.join(d, part["truth"]))


def is_html(rec) -> bool:
    return (rec["type"] == "response" and rec["http"] is not None
            and "html" in (rec["http"].get_header("Content-Type") or "").lower())


@pytest.fixture(scope="module")
def sample60(tmp_path_factory):
    d = tmp_path_factory.mktemp("seed1")
    return str(d), synth.make_corpus(d, 60, 1)


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    d = tmp_path_factory.mktemp("seed7")
    return str(d), synth.make_corpus(str(d), 150, 7, files=3)


# --------------------------------------------------------------------------------------
# Determinism


def _read_all(d):
    return {name: open(os.path.join(d, name), "rb").read() for name in sorted(os.listdir(d))}


def test_same_arguments_give_identical_bytes(tmp_path, sample60):
    d, m = sample60
    m2 = synth.make_corpus(tmp_path / "again", 60, 1)
    assert m2 == m
    a, b = _read_all(d), _read_all(tmp_path / "again")
    assert sorted(a) == ["MANIFEST.json", "SYNTH-1-00000.truth.jsonl.gz",
                         "SYNTH-1-00000.warc.gz", "SYNTH-1-00000.warc.wat.gz"]
    assert a == b


def test_other_seed_differs(tmp_path, sample60):
    d, m = sample60
    m2 = synth.make_corpus(tmp_path, 60, 2)
    assert sorted(os.listdir(tmp_path)) == ["MANIFEST.json", "SYNTH-2-00000.truth.jsonl.gz",
                                            "SYNTH-2-00000.warc.gz", "SYNTH-2-00000.warc.wat.gz"]
    a = open(os.path.join(d, "SYNTH-1-00000.warc.gz"), "rb").read()
    b = open(tmp_path / "SYNTH-2-00000.warc.gz", "rb").read()
    assert a != b
    ta = read_truth(os.path.join(d, "SYNTH-1-00000.truth.jsonl.gz"))
    tb = read_truth(tmp_path / "SYNTH-2-00000.truth.jsonl.gz")
    assert [t["page_url"] for t in ta] != [t["page_url"] for t in tb]
    assert {t["warc_record_id"] for t in ta}.isdisjoint(t["warc_record_id"] for t in tb)


def test_multiple_files_split_pages(multi):
    d, m = multi
    assert [p["pages"] for p in m["parts"]] == [50, 50, 50]
    assert sorted(os.listdir(d)) == ["MANIFEST.json"] + sorted(
        "SYNTH-7-%05d.%s" % (i, ext) for i in range(3)
        for ext in ("truth.jsonl.gz", "warc.gz", "warc.wat.gz"))
    ids = set()
    for warc, _, _ in corpus_files(d, m):
        for r in read_warc(warc):
            assert r["id"] not in ids
            ids.add(r["id"])
    assert len(ids) == 3 * (1 + 3 * 50)


def test_fast_enough(tmp_path):
    t = time.perf_counter()
    synth.make_corpus(tmp_path, 60, 5)
    assert time.perf_counter() - t < 2.0  # about 0.15 s on one core


def test_cli(tmp_path):
    out = subprocess.run([sys.executable, "-m", "metaclip_spark.synth", "--pages", "12", "--seed", "3",
                          "--out", str(tmp_path), "--files", "2"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "12 captures" in out
    m = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert (m["seed"], m["pages"], m["n_files"]) == (3, 12, 2)
    assert m == synth.make_corpus(tmp_path / "fn", 12, 3, files=2)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        synth.make_corpus(tmp_path, 0, 1)
    with pytest.raises(ValueError):
        synth.make_corpus(tmp_path, 3, 1, files=4)


# --------------------------------------------------------------------------------------
# WARC structure


def test_warc_records_and_gzip_members(sample60):
    d, m = sample60
    path = os.path.join(d, "SYNTH-1-00000.warc.gz")
    data = open(path, "rb").read()
    members = gzip_members(data)
    recs = read_warc(path)
    assert len(members) == len(recs) == 1 + 3 * 60
    assert [r["offset"] for r in recs] == [o for o, _, _ in members]
    for _, member, _ in members:
        assert member[:4] == b"\x1f\x8b\x08\x00"     # deflate, no FNAME/FEXTRA flags
        assert member[4:8] == b"\x00\x00\x00\x00"    # mtime 0
    assert recs[0]["type"] == "warcinfo"
    assert recs[0]["headers"].get_header("WARC-Filename") == "SYNTH-1-00000.warc.gz"
    assert [r["type"] for r in recs[1:]] == ["request", "response", "metadata"] * 60
    for req, resp, meta in zip(recs[1::3], recs[2::3], recs[3::3]):
        assert req["uri"] == resp["uri"] == meta["uri"]
        assert resp["headers"].get_header("WARC-Concurrent-To") == req["id"]
        assert meta["headers"].get_header("WARC-Concurrent-To") == resp["id"]
        assert req["headers"].get_header("WARC-Date") == resp["headers"].get_header("WARC-Date")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", resp["headers"].get_header("WARC-Date"))
        assert resp["headers"].get_header("WARC-Payload-Digest").startswith("sha1:")
        assert req["http"].protocol == "GET"
        assert int(resp["http"].get_header("Content-Length")) == len(resp["body"])
    ids = [r["id"] for r in recs]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"<urn:uuid:[0-9a-f-]{36}>", i) for i in ids)
    types = {}
    for r in recs[2::3]:
        ct = r["http"].get_header("Content-Type").split(";")[0]
        types[ct] = types.get(ct, 0) + 1
    assert types == {"text/html": 57, "image/jpeg": 3}
    statuses = sorted(r["http"].get_statuscode() for r in recs[2::3])
    assert statuses.count("404") == 2 and statuses.count("301") == 1


def test_manifest(sample60):
    d, m = sample60
    on_disk = json.loads(open(os.path.join(d, "MANIFEST.json"), encoding="utf-8").read())
    assert on_disk == m
    assert (m["seed"], m["pages"], m["html_pages"]) == (1, 60, 57)
    assert m["languages"] == {"de": 2, "en": 47, "es": 2, "fr": 2, "ja": 2, "ru": 2}
    assert m["warc_records"] == {"metadata": 60, "request": 60, "response": 60, "warcinfo": 1}
    assert m["wat_records"] == 182
    truth = read_truth(os.path.join(d, "SYNTH-1-00000.truth.jsonl.gz"))
    assert m["truth_pairs"] == sum(len(t["pairs"]) for t in truth) == 282
    for name, info in m["files"].items():
        data = open(os.path.join(d, name), "rb").read()
        assert info == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# --------------------------------------------------------------------------------------
# Truth == independent derivation from the WARC HTML and from the WAT Links


def _check_corpus(d, m):
    n_pages = n_pairs = 0
    for warc, wat, truth_path in corpus_files(d, m):
        recs = read_warc(warc)
        truth = read_truth(truth_path)
        by_id = {t["warc_record_id"]: t for t in truth}
        assert len(by_id) == len(truth)
        html_recs = [r for r in recs if is_html(r)]
        assert [r["id"] for r in html_recs] == [t["warc_record_id"] for t in truth]

        # WAT: envelope per WARC record
        wat_recs = read_warc(wat)
        assert wat_recs[0]["type"] == "warcinfo"
        envs = {}
        for w in wat_recs[1:]:
            assert w["type"] == "metadata"
            assert w["headers"].get_header("Content-Type") == "application/json"
            envs[w["headers"].get_header("WARC-Refers-To")] = json.loads(w["body"])

        for r in html_recs:
            t = by_id[r["id"]]
            assert t["page_url"] == r["uri"]
            text = spec_decode(r["body"], r["http"].get_header("Content-Type"))
            assert "\ufffd" not in text
            p = parse_html(text)
            from_html = derive_pairs([(i.get("src"), i.get("alt")) for i in p.imgs], p.base, r["uri"])
            assert from_html == t["pairs"], r["uri"]
            if p.lang is not None:
                assert p.lang == t["lang"]
            assert t["base_href"] == p.base

            env = envs[r["id"]]["Envelope"]
            resp = env["Payload-Metadata"]["HTTP-Response-Metadata"]
            hm = resp["HTML-Metadata"]
            links = [l for l in hm["Links"] if l["path"] == "IMG@/src"]
            # WAT Links are the attribute values as the parser returns them
            assert [(l["url"], l.get("alt")) for l in links] == [
                (i["src"], i.get("alt")) for i in p.imgs if i.get("src") is not None]
            from_wat = derive_pairs([(l["url"], l.get("alt")) for l in links],
                                    hm["Head"].get("Base"), r["uri"])
            assert from_wat == t["pairs"], r["uri"]
            assert resp["Response-Message"]["Status"] == r["http"].get_statuscode() == str(t["status"])
            n_pages += 1
            n_pairs += len(t["pairs"])
    assert n_pages == m["html_pages"]
    assert n_pairs == m["truth_pairs"]
    return n_pages, n_pairs


def test_truth_matches_independent_derivation(sample60):
    assert _check_corpus(*sample60) == (57, 282)


def test_truth_matches_independent_derivation_other_seeds(multi, tmp_path):
    n_pages, n_pairs = _check_corpus(*multi)
    assert n_pages == multi[1]["html_pages"] > 130
    for seed in (11, 12, 13):
        d = tmp_path / str(seed)
        _check_corpus(str(d), synth.make_corpus(d, 100, seed))


def test_wat_correspondence(multi):
    d, m = multi
    for warc, wat, _ in corpus_files(d, m):
        warc_name = os.path.basename(warc)
        recs = read_warc(warc)
        wat_recs = read_warc(wat)
        warc_members = {o: inflated for o, _, inflated in gzip_members(open(warc, "rb").read())}
        assert len(gzip_members(open(wat, "rb").read())) == len(wat_recs) == len(recs) + 1
        assert wat_recs[0]["headers"].get_header("WARC-Filename") == os.path.basename(wat)
        assert [w["headers"].get_header("WARC-Refers-To") for w in wat_recs[1:]] == [r["id"] for r in recs]
        for r, w in zip(recs, wat_recs[1:]):
            j = json.loads(w["body"])
            assert j["Container"]["Filename"] == warc_name
            assert j["Container"]["Offset"] == str(r["offset"])
            env = j["Envelope"]
            assert env["Format"] == "WARC"
            hdr = env["WARC-Header-Metadata"]
            assert hdr["WARC-Type"] == r["type"]
            assert hdr["WARC-Record-ID"] == r["id"]
            assert hdr.get("WARC-Target-URI") == r["uri"]
            assert w["uri"] == (r["uri"] or warc_name)
            inflated = warc_members[r["offset"]]
            assert int(env["WARC-Header-Length"]) == inflated.index(b"\r\n\r\n") + 4
            pm = env["Payload-Metadata"]
            if r["type"] == "response":
                assert pm["Actual-Content-Type"] == "application/http; msgtype=response"
                resp = pm["HTTP-Response-Metadata"]
                assert resp["Headers"]["Content-Type"] == r["http"].get_header("Content-Type")
                assert ("HTML-Metadata" in resp) == is_html(r)
            elif r["type"] == "request":
                assert pm["HTTP-Request-Metadata"]["Request-Message"]["Method"] == "GET"
            else:
                assert pm["Actual-Content-Type"] == "application/warc-fields"


# --------------------------------------------------------------------------------------
# Composition of the corpus: the edge cases the brief asks for are all there


def test_sample_covers_edge_cases(sample60):
    d, m = sample60
    recs = read_warc(os.path.join(d, "SYNTH-1-00000.warc.gz"))
    bodies = [r["body"] for r in recs if is_html(r)]
    blob = b"\n".join(bodies)
    for needle in [b"<!-- <img", b"document.write('<img", b"<noscript><img", b"<IMG SRC=",
                   b"srcset=", b"data-src=", b"javascript:", b"data:image/", b'src=""',
                   b'alt=""', b"&amp;", b"<base href=", b"<base target=", b"src='", b"alt='",
                   b"/>", b'type="image"', b"//cdn.example.net/", b'"../', b"HTTPS://", b"&nbsp;",
                   b"<picture>", b"about:blank"]:
        assert needle in blob, needle
    charsets = {(r["http"].get_header("Content-Type") or "") for r in recs if is_html(r)}
    assert "text/html; charset=WINDOWS-1251" in charsets or any(
        b"charset=windows-1251" in b for b in bodies)
    assert any(b'lang="ja"' in b for b in bodies) and any(b'lang="ru"' in b for b in bodies)

    wat = read_warc(os.path.join(d, "SYNTH-1-00000.warc.wat.gz"))
    srcs, alts = [], []
    bases = 0
    for w in wat[1:]:
        pm = json.loads(w["body"])["Envelope"]["Payload-Metadata"]
        hm = pm.get("HTTP-Response-Metadata", {}).get("HTML-Metadata")
        if hm:
            srcs += [l["url"] for l in hm["Links"] if l["path"] == "IMG@/src"]
            alts += [l["alt"] for l in hm["Links"] if l["path"] == "IMG@/src" and "alt" in l]
            bases += "Base" in hm["Head"]
    assert bases >= 4
    relative = [s for s in srcs if not re.match(r"(?i)^\s*(https?:)?//", s) and not re.match(r"^[a-z]+:", s)]
    assert len(relative) >= 0.3 * len(srcs)
    truth = read_truth(os.path.join(d, "SYNTH-1-00000.truth.jsonl.gz"))
    texts = [p[1] for t in truth for p in t["pairs"]]
    assert len(set(texts)) > 150
    for ws in ("\n", "\t", "\u00a0", "\u3000", "  "):
        assert any(ws in a for a in alts), repr(ws)
    assert "" in alts and "" in srcs
    assert any(s != s.strip() for s in srcs)
    langs = {t["lang"] for t in truth if t["pairs"]}
    assert langs == {"en", "de", "fr", "es", "ru", "ja"}
    assert all(p[0].startswith(("http://", "https://")) for t in truth for p in t["pairs"])


# --------------------------------------------------------------------------------------
# The bundled sample is a regeneration


def test_bundled_sample_equals_regeneration(tmp_path):
    bundled = defaults.sample_dir()
    m = synth.make_corpus(tmp_path, defaults.SAMPLE_PAGES, defaults.SAMPLE_SEED, defaults.SAMPLE_FILES)
    names = sorted(n for n in os.listdir(bundled) if not n.startswith((".", "__")))
    assert names == sorted(os.listdir(tmp_path))
    for name in names:
        assert (bundled / name).read_bytes() == (tmp_path / name).read_bytes(), name
    total = sum(info["size"] for info in m["files"].values())
    assert total < 300_000


def test_make_demo_reads_the_corpus_it_makes(tmp_path):
    """`make demo-corpus` writes the files `make demo` names: WARCs and WATs that exist."""
    import pathlib
    import shutil

    root = pathlib.Path(ROOT)
    if shutil.which("make") is None or not (root / ".venv" / ".installed").exists():
        pytest.skip("make or the venv is missing")
    corpus = tmp_path / "corpus"
    args = ["make", "-s", "-C", str(root), "-o", ".venv/.installed", "DEMO_CORPUS=%s" % corpus, "DEMO_PAGES=8"]
    subprocess.run(args + ["demo-corpus"], check=True, capture_output=True, timeout=120)
    dry = subprocess.run(args + ["-n", "demo"], check=True, capture_output=True, text=True, timeout=60).stdout
    words = dry.replace("\\\n", " ").split()
    inputs = [words[i + 1] for i, w in enumerate(words) if w == "--input"]
    assert len(inputs) == 4 and all(pathlib.Path(p).is_file() for p in inputs), inputs
    assert sum(p.endswith(".warc.gz") for p in inputs) == 2 and sum(p.endswith(".warc.wat.gz") for p in inputs) == 2
    assert "metaclip_spark.synth" not in dry   # made once: an up-to-date corpus is not made again
