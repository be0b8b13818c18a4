"""The compiled WAT scanner (wat_scan in metaclip_spark/kernels/csrc/wat_json.c) against the Python path it replaces.

The contract: wherever the scanner answers, its answer equals ``wat.wat_images_py``'s
(orjson + the links walk); where that raises (malformed JSON) or where the scanner is not
sure, it answers NotImplemented and ``wat.wat_images`` runs the Python path."""

import glob
import random
from collections import Counter

import orjson
import pytest

from metaclip_spark.kernels import native
from metaclip_spark.formats import wat
from metaclip_spark.formats.warc import read_records
from tests.conftest import SHARED
from tests.formats.test_wat import LINKS, wat_body

scan = native.speedups.wat_scan if native.ENABLED else None


def python_result(body):
    try:
        return ("ok", wat.wat_images_py(body))
    except ValueError:
        return ("error", None)


def check(body) -> bool:
    """Assert the contract on one body; True when the scanner answered."""
    want = python_result(body)
    got = scan(body)
    if got is NotImplemented:
        return False
    assert want == ("ok", got), body[:300]
    return True


needs_native = pytest.mark.skipif(not native.ENABLED, reason="metaclip_spark._speedups not built")


@needs_native
@pytest.mark.parametrize("body", [
    wat_body("http://p.example/dir/page.html", LINKS, base="/base/"),
    wat_body("http://p/", kind="request"), wat_body("http://p/", html=False), wat_body("", kind="warcinfo"),
    b'{"Envelope": []}', b"[]", b"  {} \n", b'"IMG@"', b"12",
    b'{"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": 5}}}',
    b'{"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": null}}}}',
    b'{"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {}}}}}',
    # odd shapes: links that are no objects, a Head that is a list, non-string values
    orjson.dumps({"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {
        "Head": [], "Links": [None, 5, "IMG@/src", [], {"path": "IMG@/src", "url": "/x", "alt": 3}]}}}}}),
    orjson.dumps({"Envelope": {"WARC-Header-Metadata": {"WARC-Target-URI": 5},
                               "Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {
                                   "Head": {"Base": ["x"]}, "Links": {"path": "IMG@/src", "url": "/y"}}}}}}),
    # escapes inside values are decoded: quotes, backslashes, \/, control escapes, \u, pairs
    b'{"Envelope": {"WARC-Header-Metadata": {"WARC-Target-URI": "http:\\/\\/p\\/a"}, "Payload-Metadata":'
    b' {"HTTP-Response-Metadata": {"HTML-Metadata": {"Head": {"Base": "\\u002fb\\/"}, "Links": ['
    b'{"path": "IMG@/src", "url": "\\"q\\".jpg", "alt": "a\\tb\\nc\\\\d \\u00e9\\ud83d\\ude00 \\u0000"},'
    b'{"url": "/z.jpg", "alt": "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "path": "IMG@/src", "n": [1, -0.5, true, false, null]}'
    b']}}}}}',
    # links keep the last of duplicated keys, as a dict does
    b'{"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {"Links": ['
    b'{"path": "IMG@/src", "url": "/a", "path": "A@/href"}, {"path": "A@/href", "url": "/b", "path": "IMG@/src"},'
    b'{"path": "IMG@/src", "url": "/c", "alt": "x", "alt": 5}, {"path": "IMG@/src", "url": 1, "url": "/d"}]}}}}}',
])
def test_scanner_answers_and_equals_python(body):
    assert check(body)


@needs_native
@pytest.mark.parametrize("body", [
    # malformed: the Python path raises (and words the error); the scanner defers
    b'{"Envelope": ', b"{'a': 1}", b'{"a": NaN}', b"", b"   ", b'{"a": "\xff"}', b'{"a": "\xed\xa0\x80"}',
    b'{"a": "\xc0\xaf"}', b'{"a": "\xf4\x90\x80\x80"}', b'\xef\xbb\xbf{}', b'{"a": 1,}', b'[1,]', b'{"a": 01}',
    b'{"a": "x\ty"}', b'{"a": "\\x"}', b'{"a": "\\ud800"}', b'{"a": "\\udc00\\ud800"}', b'{"a": 1} x',
    b'{"a" 1}', b'{"a": tru}', b'{"a": -}', b'{"a": 1.}', b'{"a": "\\u12G4"}', b'{a: 1}',
    # valid, but where orjson's own rules decide: exponents, long numbers, deep nesting
    b'{"a": 1e400}', b'{"a": 1E5}', b'{"a": 1234567890123456}', b"[" * 300 + b"]" * 300,
    # tracked keys given twice, or escaped, in a tracked object
    b'{"Envelope": {}, "Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {}}}}}',
    b'{"Envel\\u006fpe": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {}}}}}',
    b'{"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": {"Links": ['
    b'{"path": "IMG@\\/src", "url": "/a"}]}}}}}',
])
def test_scanner_defers_what_it_cannot_prove(body):
    assert scan(body) is NotImplemented
    want = python_result(body)
    if want[0] == "ok":
        assert wat.wat_images(body) == want[1]
    else:
        with pytest.raises(ValueError):
            wat.wat_images(body)


def wat_json_bodies(path):
    with open(path, "rb") as fh:
        for rec in read_records(fh, types={"metadata"}):
            if rec.block and rec.complete:
                yield rec.block


def synth_bodies(tmp_path_factory, pages=300, seed=7):
    from metaclip_spark.synth import make_corpus

    out = tmp_path_factory.mktemp("synth-wat")
    make_corpus(str(out), pages=pages, seed=seed)
    (wat_file,) = glob.glob(str(out / "*.wat.gz"))
    return list(wat_json_bodies(wat_file))


@needs_native
def test_generated_wat_equal(tmp_path_factory):
    bodies = synth_bodies(tmp_path_factory)
    answered = sum(check(b) for b in bodies)
    with_img = sum(wat.HAS_IMG in b for b in bodies)
    assert with_img > 100
    assert answered == len(bodies)      # the generator writes nothing the scanner defers


@needs_native
def test_real_cc_wats_equal():
    files = sorted(glob.glob(str(SHARED / "data" / "cc" / "*.wat.gz")))
    if not files:
        pytest.skip("shared data not available: %s" % (SHARED / "data" / "cc"))
    n = answered = images = 0
    for f in files:
        for body in wat_json_bodies(f):
            n += 1
            if check(body):
                answered += 1
                got = scan(body)
                images += len(got[1]) if got else 0
    assert (n, answered, images) == (5, 5, 4 * 27)    # 4 one-page CC samples + whirlwind's request


def mutate(body: bytes, rng: random.Random) -> bytes:
    """One random edit of the kinds that break or bend JSON."""
    i = rng.randrange(len(body) + 1)
    op = rng.randrange(7)
    if op == 0:                                     # delete a run
        return body[:i] + body[i + rng.randint(1, 4):]
    if op == 1:                                     # insert JSON punctuation or an escape
        return body[:i] + rng.choice([b'"', b"\\", b",", b":", b"{", b"}", b"[", b"]", b" ", b"\\u00e9",
                                      b"\\ud83d\\ude00", b"\\ud83d", b"\xc3", b"\xe2\x82\xac", b"\x00",
                                      b"\\n", b"1e5", b"-", b"null"]) + body[i:]
    if op == 2:                                     # a tracked key again, at a random place
        return body[:i] + rng.choice([b'"Envelope":{},', b'"path":"IMG@/src",', b'"url":"/u",',
                                      b'"alt":"x",', b'"Base":"/b",', b'"Links":[],', b'"Head":{},']) + body[i:]
    if op == 3:                                     # swap a byte
        return body[:i] + bytes([rng.randrange(256)]) + body[i + 1:]
    if op == 4:                                     # cut the body short
        return body[:i]
    if op == 5:                                     # change the type of a value
        j = body.find(b'":', i)
        if j < 0:
            return body
        k = j + 2
        return body[:k] + rng.choice([b"5,", b"null,", b"[],", b"{},", b'"s",', b"[1],"]) + body[k:]
    j = body.find(b'"IMG@/src"', i)                  # turn an image into another link kind
    return body if j < 0 else body[:j] + b'"A@/href"' + body[j + 10:]


@needs_native
def test_fuzzed_bodies_equal(tmp_path_factory):
    bodies = [b for b in synth_bodies(tmp_path_factory, pages=120, seed=11) if wat.HAS_IMG in b]
    bodies = [b[:4000] + b[-2000:] if len(b) > 6000 else b for b in bodies]  # keep the test quick
    bodies = [b for b in bodies if python_result(b)[0] == "ok"] + [wat_body("http://p/x", LINKS, base="b/")]
    rng = random.Random(20261130)
    answered = deferred = 0
    for n in range(30000):
        body = rng.choice(bodies)
        for _ in range(rng.randint(1, 3)):
            body = mutate(body, rng)
        if check(body):
            answered += 1
        else:
            deferred += 1
    # both outcomes are exercised in quantity (numbers printed by -s)
    print("fuzz: %d answered, %d deferred" % (answered, deferred))
    assert answered > 5000 and deferred > 5000


STRINGS = ["IMG@/src", "A@/href", "/a.jpg", "x", "", " sp ", "\u00e9t\u00e9", "caf\u00e9 \u20ac \U0001f600",
           'q"uote', "back\\slash", "tab\tnl\nnul\x00", "\ud7ff\ue000", "http://h/p?q#f"]
KEYS = {0: ["Envelope", "Container"], 1: ["WARC-Header-Metadata", "Payload-Metadata", "Format"],
        2: ["WARC-Target-URI", "HTTP-Response-Metadata", "HTML-Metadata", "Head", "Links", "Base"],
        3: ["path", "url", "alt", "text", "Base"]}


def json_string(text: str, rng: random.Random) -> bytes:
    """``text`` as a JSON string, each character raw (UTF-8) or escaped at random."""
    out = ['"']
    for ch in text:
        c = ord(ch)
        if ch in '"\\' or c < 0x20 or rng.random() < 0.3:
            if ch in "\"\\/\n\t" and rng.random() < 0.5:
                out.append("\\" + {"\n": "n", "\t": "t"}.get(ch, ch))
            elif c > 0xFFFF:
                c -= 0x10000
                out.append("\\u%04x\\u%04X" % (0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF)))
            else:
                out.append("\\u%04x" % c)
        else:
            out.append(ch)
    return ("".join(out) + '"').encode()


def random_json(rng: random.Random, depth: int = 0) -> bytes:
    """Valid JSON text in shapes near the WAT layout: tracked keys (sometimes twice),
    escaped and raw non-ASCII strings, all value types, links as objects or not."""
    r = rng.random()
    if depth > 6 or r < 0.3:
        kind = rng.randrange(6)
        if kind == 0:
            return json_string(rng.choice(STRINGS), rng)
        return [b"null", b"true", b"false", b"-0.25", b"17"][kind - 1]
    if r < 0.45:
        return b"[" + b", ".join(random_json(rng, depth + 1) for _ in range(rng.randrange(4))) + b"]"
    keys = KEYS[min(depth // 2, 3)] + ["other"]
    items = []
    for _ in range(rng.randrange(1, 6)):
        items.append(b'"%s": %s' % (rng.choice(keys).encode(), random_json(rng, depth + 1)))
    return b"{" + b",".join(items) + b"}"


def wat_shaped(rng: random.Random) -> bytes:
    links = b"[" + b",".join(
        b'{"path": "%s", "url": %s%s}' % (rng.choice([b"IMG@/src", b"A@/href"]),
                                          json_string(rng.choice(STRINGS), rng) if rng.random() < 0.7
                                          else random_json(rng, 7),
                                          b', "alt": ' + random_json(rng, 7) if rng.random() < 0.7 else b"")
        for _ in range(rng.randrange(5))) + b"]"
    html = b'{"Head": {"Base": %s}, "Links": %s}' % (random_json(rng, 7), links if rng.random() < 0.9 else random_json(rng, 3))
    return (b'{"Envelope": {"WARC-Header-Metadata": {"WARC-Target-URI": %s}, "Payload-Metadata": '
            b'{"HTTP-Response-Metadata": {"HTML-Metadata": %s}}}}' % (random_json(rng, 7), html))


@needs_native
def test_random_valid_documents_equal():
    rng = random.Random(1130)
    answered = images = 0
    for n in range(20000):
        body = random_json(rng) if n % 2 else wat_shaped(rng)
        assert python_result(body)[0] == "ok", body
        if check(body):
            answered += 1
            got = scan(body)
            images += len(got[1]) if got else 0
    print("random documents: %d answered, %d images" % (answered, images))
    assert answered > 15000 and images > 5000


def check_json_outcome(body, native_on: bool, monkeypatch) -> str:
    with monkeypatch.context() as m:
        if not native_on:
            m.setattr(wat, "_scan", None)
        try:
            wat.check_json(body)
            return "ok"
        except ValueError:
            return "error"


@needs_native
def test_bodies_cut_short_are_malformed_on_both_paths(tmp_path_factory, monkeypatch):
    """Issue #13: a body cut anywhere (before its Links, its HTML-Metadata, at random) is
    never answered by the scanner, and check_json rejects it on both paths, like orjson."""
    bodies = synth_bodies(tmp_path_factory, pages=60, seed=5)
    rng = random.Random(13)
    n = Counter()
    for body in bodies:
        for key in (b'"Links"', b'"HTML-Metadata"', b'"HTTP-Response-Metadata"', None):
            i = rng.randrange(1, len(body) - 1) if key is None else body.find(key)
            if i <= 0 or not body[i:].strip():
                continue
            cut = body[:i]
            assert scan(cut) is NotImplemented and python_result(cut) == ("error", None), cut[-100:]
            assert check_json_outcome(cut, True, monkeypatch) == check_json_outcome(cut, False, monkeypatch) == "error"
            n[key] += 1
    assert len(bodies) == 181 and dict(n) == {b'"Links"': 57, b'"HTML-Metadata"': 57,
                                              b'"HTTP-Response-Metadata"': 60, None: 181}


@needs_native
def test_check_json_native_equals_python_on_fuzzed_bodies(tmp_path_factory, monkeypatch):
    """check_json runs on every body the IMG@ triage does not parse (requests, pages without
    images, non-HTML responses): the same verdict with and without the scanner."""
    bodies = [b for b in synth_bodies(tmp_path_factory, pages=60, seed=5) if wat.HAS_IMG not in b]
    assert len(bodies) > 100
    rng = random.Random(1313)
    outcomes = {"ok": 0, "error": 0}
    for n in range(5000):
        body = rng.choice(bodies)
        for _ in range(rng.randint(0, 2)):
            body = mutate(body, rng)
        got = check_json_outcome(body, True, monkeypatch)
        assert got == check_json_outcome(body, False, monkeypatch) == ("ok" if python_result(body)[0] == "ok"
                                                                       else "error"), body[:300]
        outcomes[got] += 1
    assert outcomes["ok"] > 1000 and outcomes["error"] > 1000
