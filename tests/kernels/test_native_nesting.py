"""The compiled nesting scan (nesting_work in metaclip_spark/kernels/csrc/nesting.c) against
htmlpairs.nesting_work_py: the same int, full or stopped early, on a hand case per rule of the
Python scan, every pair of the names its rules know, every HTML page of the real WARCs, and
fuzzed tag soups and mutated real pages, as bytes and as str."""

import glob
import random

import pytest

from metaclip_spark.formats import html as hp
from metaclip_spark.kernels import native
from metaclip_spark.formats.warc import read_records
from tests.conftest import ROOT, SHARED, shared_path

pytestmark = pytest.mark.skipif(not native.ENABLED, reason="metaclip_spark._speedups not built")

c_scan = native.speedups.nesting_work if native.ENABLED else None
KNOWN = sorted(hp._VOID | hp._BOUNDARY | hp._TABLE_PARTS | hp._CLOSES_P | hp._HEADINGS | hp._SPECIAL)
RAW = [b"script", b"style", b"textarea", b"title", b"xmp", b"iframe", b"noembed", b"noframes", b"svg", b"math"]
SAMPLE_WARCS = sorted(glob.glob(str(ROOT / "metaclip_spark" / "data" / "sample" / "*.warc.gz")))


def same(html, *stops):
    """C == Python on html, in full and stopped above half the full work and above each of
    stops; returns the full work."""
    want = hp.nesting_work_py(html)
    got = c_scan(html)
    assert got == want, (html[:300], got, want)
    for stop in (want // 2, *stops):
        w, g = hp.nesting_work_py(html, stop), c_scan(html, stop)
        assert g == w, (html[:300], stop, g, w)
    return want


def check(html, stops=()):
    """:func:`same`, also stopped around the full work and through the binding."""
    full = hp.nesting_work_py(html)
    same(html, 0, -1, full - 1, full, full + 1, *stops)
    for stop in (None, full // 2, *stops):
        assert hp.nesting_work(html, stop) == hp.nesting_work_py(html, stop)
    return full


# one case per rule of the Python scan: (html, work); each tag adds the elements open when it
# is met, before it closes anything (<li><li>: 0 + 1)
RULES = [
    ("", 0), ("no tags at all", 0), ("<", 0), ("<<<<", 0), ("</", 0), ("< div>", 0), ("<1div><-x>", 0),
    ("</ div></1>", 0), ("<!x><!doctype html><?xml?>", 0), ("<div", 0), ("<div><div", 1),
    # nesting and end tags; names are ASCII-case-insensitive, end at the first non-alphanumeric
    ("<div><div><div></div></div></div>", 0 + 1 + 2 + 3 + 2 + 1), ("<DIV><Div></dIV></div>", 0 + 1 + 2 + 1),
    ("<h1x><h1x></H1X>", 0 + 1 + 2), ("<div:x><div-y></div>", 0 + 1 + 2), ("<a1b2><a1b2></a1b2></a1b2>", 0 + 1 + 2 + 1),
    ("<span><div></span>", 0 + 1 + 2),                    # </span>: not the top, in scope: closes up to it
    ("<div><span></div></span><div>", 0 + 1 + 2 + 0 + 0),  # stray </span>: nothing
    ("</nothing><x></y><x>", 0 + 0 + 1 + 1),
    # void elements (html/head/body included) are never pushed; their end tags count, close nothing
    ("<br><img><hr><input><meta><link><wbr><area><html><head><body><div>", 0),
    ("<div></br></img><span>", 0 + 1 + 1 + 1), ("<BR><Img src=x><IMAGE><keygen><menuitem><x>", 0),
    # comments, including unterminated and odd ones
    ("<div><!-- <div><div> --><span>", 0 + 1), ("<div><!-- <div><div>", 0), ("<div><!--><div>--><x>", 0 + 1),
    ("<div><!---><div>--><x>", 0 + 1), ("<div><!----><x>", 0 + 1), ("<!-<div><x>", 0 + 1), ("<!--", 0),
    ("<div><! --><x>", 0 + 1),
    # raw text: closed at the first "</name" (any case, whatever follows), else at the end
    ("<div><script><div></script><x>", 0 + 1), ("<div><SCRIPT type=x><div></ScRiPt><x>", 0 + 1),
    ("<div><script><div></scriptx><x>", 0 + 1), ("<div><script><div>", 0), ("<div><script", 0 + 1),
    ("<script/</script><x>", 0), ("<script</script><x>", 0 + 1 + 0),    # "<script<": a tag, not raw text ("<scriptx><div>", 0 + 1),
    ("<script\x1c<div></script><x>", 0 + 1 + 2 + 0), ("<script\x00<div>", 0 + 1),
    ("<style>a<b>c</style><x>", 0), ("<textarea><div></textarea><x>", 0), ("<title><div></title><x>", 0),
    ("<xmp><div></xmp><x>", 0), ("<iframe src=a><div></iframe><x>", 0), ("<noembed><div></noembed><x>", 0),
    ("<noframes><div></noframes><x>", 0), ("<svg><g><g></svg><x>", 0), ("<math><mi></math><x>", 0),
    ("<div><svg><g><g><x>", 0), ("<script></style><div></script><x>", 0), ("<xmp", 0), ("<xmp\"><div>", 0 + 1),
    # <p> is closed by the block tags when in scope (not across a boundary)
    ("<p>a<p>b<div>c</div>", 0 + 1 + 1 + 1), ("<p><span><div>", 0 + 1 + 2), ("<p><button><div>", 0 + 1 + 2),
    ("<p><table><p>", 0 + 1 + 1), ("<p><ul><li><p><ol>", 0 + 1 + 1 + 2 + 3),
    # headings close an open heading on top
    ("<h1><h2><h3>", 0 + 1 + 1), ("<h1><span><h2>", 0 + 1 + 2), ("<h1>a</h1><h2>", 0 + 1 + 0),
    # list items within their list; dd/dt close each other
    ("<ul><li>a<li>b<li>c</ul>", 0 + 1 + 2 + 2 + 2), ("<li><li><li>", 0 + 1 + 1),
    ("<ul><li><ul><li><li></ul><li>", 0 + 1 + 2 + 3 + 4 + 4 + 2),
    ("<dl><dt>a<dd>b<dt>c<dd>", 0 + 1 + 2 + 2 + 2), ("<dd><span><dt>", 0 + 1 + 2), ("<dt><dl><dd>", 0 + 1 + 2),
    ("<li><div><li>", 0 + 1 + 2), ("<li><button><li>", 0 + 1 + 2),
    # table parts within their table
    ("<table><tr><td>a<td>b<tr><td></table><x>", 0 + 1 + 2 + 3 + 3 + 2 + 3 + 0),
    ("<table><tbody><tr><th><th><thead><tfoot>", 0 + 1 + 2 + 3 + 4 + 4 + 2),
    ("<td><td><td>", 0 + 1 + 1), ("<table><td><table><td><td>", 0 + 1 + 2 + 3 + 4),
    ("<table><tr><td><div><table><tr></table></td><tr>", 0 + 1 + 2 + 3 + 4 + 5 + 6 + 4 + 2),
    ("<td><caption><td>", 0 + 1 + 2), ("<table><caption><td></caption><x>", 0 + 1 + 2 + 3 + 1),
    ("<div><table><span></div><x>", 0 + 1 + 2 + 3 + 3), ("<div><template><span></div><x>", 0 + 1 + 2 + 3 + 3),
    ("<td><span></td><x>", 0 + 1 + 2 + 0), ("<table><div></tr><x>", 0 + 1 + 2 + 2),
    # <a>, <nobr> close their kind
    ("<a><a><a>", 0 + 1 + 1), ("<a><div><a>", 0 + 1 + 2), ("<nobr><span><nobr>", 0 + 1 + 2),
    ("<a><button><a>", 0 + 1 + 2), ("<a><nobr><a><nobr>", 0 + 1 + 2 + 1),
    # option/optgroup
    ("<select>" + "<option>x" * 10 + "</select>", 1 + 9 * 2 + 2), ("<optgroup><option><optgroup><option>", 0 + 1 + 2 + 1),
    ("<option><optgroup><option>", 0 + 1 + 1), ("<option><span><option>", 0 + 1 + 2),
    # a form inside an open form is not pushed (it still closes a <p>)
    ("<form><div><form><x>", 0 + 1 + 2 + 2), ("<form><p><form><x>", 0 + 1 + 2 + 1), ("<form></form><form><x>", 0 + 1 + 0 + 1),
    # an end tag does not close through an inner boundary; the innermost boundary's does
    ("<applet><marquee><object><button></applet><x>", 0 + 1 + 2 + 3 + 4 + 4),
    ("<applet><marquee><object><button></button></object><x>", 0 + 1 + 2 + 3 + 4 + 3 + 2),
]


@pytest.mark.parametrize("html,work", RULES)
def test_each_rule(html, work):
    assert hp.nesting_work_py(html) == work                  # the case says what the rule is
    for form in (html, html.encode(), html.upper(), html.upper().encode(), html.lower().encode()):
        check(form, stops=range(0, work + 2))


def test_raw_text_opens_on_each_separator_only():
    """<name + one of [ \t\n\r\f\v/>] opens raw text; any other byte makes it a tag."""
    for raw in RAW:
        for c in range(256):
            html = b"<div><%s%c<div></%s><x>" % (raw, c, raw.upper())
            work = same(html, 1)
            assert (work == 0 + 1) == (c in b" \t\n\r\x0b\x0c/>"), (raw, c, work)   # else the inner <div> counts


def test_non_ascii_and_str_forms():
    for html in ("<div>é<span>日本</span>\U0001f600<x>", "<div\u00e9><div\u00e9></div>",
                 "<div>\udcff<p>\ud800x<li>", "<scr\u0130pt><div>", "<div>\u212a<\u212aelvin>"):
        check(html)
        check(html.encode("utf-8", "surrogatepass"))
        check(html.encode("utf-8", "replace"))
    check(b"<div>\xff\xfe<span>\x80</span><\xc3\xa9x><x\x00y><x>")
    # lone surrogates: encoded with "replace" as Python does (each one a "?"), no error
    assert c_scan("<x\udc80b><x?b></x\ud800b>") == hp.nesting_work_py("<x\udc80b><x?b></x\ud800b>") == 0 + 1 + 2


def test_every_pair_of_known_names():
    """Each name's flags as the Python sets have them: every ordered pair of known names
    (and an unknown one) opened, crossed and closed in and out of a list, a table and a
    boundary."""
    names = [n.decode() for n in KNOWN] + ["x", "ol", "ul"]
    ctx = ["", "<ul><dl>", "<table><tr>", "<p><button><form><select>", "<h1><a><nobr><option>"]
    for a in names:
        for b in names:
            for pre in ctx:
                html = "%s<%s><%s><p></%s><%s><%s></%s><%s><div>" % (pre, a, b, a, b, a, b, a)
                assert c_scan(html) == hp.nesting_work_py(html), html


def test_early_stop():
    """The scan stops at the first start tag (not void) that sees the work over the limit
    and returns the work so far: for n nested <div>, the first triangular number over it."""
    n = 50_000
    deep = b"<div>" * n + b"</div>" * n
    for stop in (0, 1, 999, 10**6, 10**9, n * (n - 1) // 2 - 1, n * (n - 1) // 2, 10**12):
        got = c_scan(deep, stop)
        assert got == hp.nesting_work_py(deep, stop)
        k = 0
        while k * (k + 1) // 2 <= stop:
            k += 1
        assert got == (k * (k + 1) // 2 if k < n else n * n)
    full = c_scan(deep)
    assert full == n * n == hp.nesting_work_py(deep)
    # end and void tags never stop it (the work is checked before a push only)
    assert c_scan("<div><div></div><br>", 0) == hp.nesting_work_py("<div><div></div><br>", 0) == 1
    assert c_scan("<div></div><br><br>", 0) == 1 and c_scan("<div><br><br>", 0) == 2
    # the limit as an int beyond int64, or a bool
    for stop in (2**64, -2**64, 2**63 - 1, -2**63, True, False):
        assert c_scan(deep[:50_000], stop) == hp.nesting_work_py(deep[:50_000], stop)


def test_check_nesting_same_with_and_without_c(monkeypatch):
    pages = [b"<div>" * 20_000, "<div>" * 20_000, b"<li>" * 20_000, b"<p>" * 30_000 + b"<div>" * 14_000]
    limits = [10**6, 2 * 10**8, 10**9]
    want = []
    for html in pages:
        for limit in limits:
            try:
                hp.check_nesting(html, limit)
                want.append(False)
            except hp.HtmlTooDeep:
                want.append(True)
    monkeypatch.setattr(hp, "_native_nesting_work", None)
    got = []
    for html in pages:
        for limit in limits:
            try:
                hp.check_nesting(html, limit)
                got.append(False)
            except hp.HtmlTooDeep:
                got.append(True)
    assert got == want and True in want and False in want


def test_inputs_it_does_not_take_go_to_python():
    class B(bytes):
        pass

    class S(str):
        pass

    class I(int):
        pass

    html = b"<div><div><p><li>"
    for args in ((bytearray(html),), (memoryview(html),), (B(html),), (S(html.decode()),), (html, 5.0),
                 (html, I(1)), (html, "1"), (None,), (12,)):
        assert c_scan(*args) is NotImplemented, args
    assert hp.nesting_work(bytearray(html)) == hp.nesting_work_py(bytearray(html)) == 0 + 1 + 2 + 3
    assert hp.nesting_work(S("<div><div>")) == 1 and hp.nesting_work(html, 0.5) == 1


def html_pages(path):
    """Every HTML page of a WARC as extraction hands it to the parser (bytes, or str when
    not UTF-8)."""
    with open(path, "rb") as fh:
        for rec in read_records(fh):
            http = hp.split_http(rec.block) if rec.block is not None else None
            if http is None:
                continue
            _, headers, body = http
            ctype = headers.get("content-type")
            if hp.media_type(ctype) not in hp.HTML_TYPES:
                continue
            payload, _ = hp.http_payload(headers, body, 20 << 20)
            yield hp.parser_input(payload, hp.page_codec(payload, ctype))


def check_warc(path):
    n = 0
    for html in html_pages(path):
        work = same(html, 1000, 10**6)
        if isinstance(html, str):                # a str page is scanned as its UTF-8
            assert same(html.encode("utf-8", "replace")) == work
        else:                                    # and a bytes page as a str: the same tags
            assert c_scan(html.decode("utf-8", "surrogateescape")) == work
        n += 1
    return n


@pytest.mark.parametrize("path", SAMPLE_WARCS, ids=lambda p: p.rsplit("/", 1)[-1])
def test_every_page_of_the_sample_warcs(path):
    assert check_warc(path) > 0


def test_every_page_of_the_shared_warcs():
    files = sorted(glob.glob(str(shared_path("data", "web") / "*.warc.gz")))
    counts = {f.rsplit("/", 1)[-1]: check_warc(f) for f in files}
    assert counts["aut-example.warc.gz"] > 100 and sum(counts.values()) > 150


# ------------------------------------------------------------------------------ fuzzing
def tag_soup(rng):
    names = [n.decode() for n in KNOWN] + ["x", "span", "b", "i", "font", "center1", "my-el", "o:p"]
    parts = []
    for _ in range(rng.randint(1, 80)):
        r = rng.random()
        name = rng.choice(names)
        if rng.random() < 0.2:
            name = "".join(c.upper() if rng.random() < 0.5 else c for c in name)
        if r < 0.35:
            parts.append("<%s%s>" % (name, rng.choice(["", " a=1", " b='>'", "/", "\n", " x=\"<p>\""])))
        elif r < 0.55:
            parts.append("</%s>" % name)
        elif r < 0.62:                                        # deep runs
            parts.append(("<%s>" % rng.choice(names)) * rng.randint(10, 200))
        elif r < 0.67:
            parts.append(("</%s>" % rng.choice(names)) * rng.randint(2, 50))
        elif r < 0.74:
            raw = rng.choice(RAW).decode()
            close = rng.choice(["</%s>" % raw, "</%s" % raw.upper(), "</%sx" % raw, "", "</%s>" % rng.choice(RAW).decode()])
            parts.append("<%s%s<div><p>%s" % (raw, rng.choice([">", " ", "\t", "\n", "\r", "\x0b", "\x0c", "/", "\x1c", "",
                                                                  "x"]),
                                             close))
        elif r < 0.8:
            parts.append(rng.choice(["<!-- <div> -->", "<!--", "-->", "<!-->", "<!--->", "<!---->", "<!- <div>",
                                     "<!doctype html>", "<![CDATA[<div>]]>"]))
        elif r < 0.9:
            parts.append(rng.choice(["text", "<", "</", "< div>", "<1>", "</ x>", "&lt;div&gt;", "é", "\x00", "<<div",
                                     "\U0001f600", "\udc80", "\r\n"]))
        else:
            parts.append(rng.choice(["<ul><li><li>", "<table><tr><td><td><tr>", "<dl><dt><dd><dt>", "<p><p><div>",
                                     "<select><option><optgroup><option>", "<form><form></form>", "<h1><h2>",
                                     "<a><a>", "<nobr><nobr>", "<button><p><table><p>"]))
    return "".join(parts)


def mutate(rng, page: bytes) -> bytes:
    if len(page) > 20_000:
        start = rng.randrange(len(page) - 10_000)
        page = page[start:start + rng.randint(1_000, 20_000)]
    b = bytearray(page)
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        i = rng.randrange(len(b) + 1)
        if r < 0.25 and b:                                    # delete a range (unclosed / stray tags)
            del b[i:i + rng.randint(1, 200)]
        elif r < 0.45 and b:                                  # repeat a range (deep nesting)
            chunk = b[i:i + rng.randint(1, 300)]
            b[i:i] = chunk * rng.randint(2, 60)
        elif r < 0.6:                                         # case flips
            for k in range(i, min(len(b), i + 500)):
                if 97 <= b[k] <= 122 and rng.random() < 0.5:
                    b[k] -= 32
        elif r < 0.8:
            b[i:i] = tag_soup(rng).encode("utf-8", "surrogatepass")
        elif b:
            del b[i:]                                          # truncated page
    return bytes(b)


def test_fuzzed_tag_soups():
    rng = random.Random(1311)
    for _ in range(3000):
        html = tag_soup(rng)
        stop = rng.randint(0, 2000)
        same(html, stop)
        same(html.encode("utf-8", "surrogatepass"), stop)


def test_mutated_real_pages():
    pages = [p if isinstance(p, bytes) else p.encode("utf-8", "surrogatepass") for path in SAMPLE_WARCS
             for p in html_pages(path)]
    if (SHARED / "data" / "web").is_dir():
        for path in sorted(glob.glob(str(SHARED / "data" / "web" / "*.warc.gz"))):
            pages += [p if isinstance(p, bytes) else p.encode("utf-8", "surrogatepass") for p in html_pages(path)]
    rng = random.Random(2718)
    for _ in range(2000):
        html = mutate(rng, rng.choice(pages))
        same(html, rng.randint(0, 10**5))
        if rng.random() < 0.2:
            same(html.decode("utf-8", "surrogateescape"))
