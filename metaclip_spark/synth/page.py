"""The structured page model: images with their attributes, HTML rendering, pairs (semantics section 2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit



# --------------------------------------------------------------------------------------
# Page model


@dataclass
class Attr:
    """An attribute with its decoded value (``None``: written without a value) and how
    it is written: quote character (``'"'``, ``"'"`` or ``""`` for unquoted), U+00A0
    as ``&nbsp;``, ``&`` left raw (only for values where the HTML unescaping leaves it)."""
    name: str
    value: str | None
    quote: str = '"'
    nbsp_entity: bool = False
    raw_amp: bool = False

    def render(self, upper: bool) -> str:
        name = self.name.upper() if upper else self.name
        if self.value is None:
            return name
        v = self.value if self.raw_amp else self.value.replace("&", "&amp;")
        v = v.replace("<", "&lt;").replace(">", "&gt;")
        if self.quote == '"':
            v = v.replace('"', "&quot;")
        elif self.quote == "'":
            v = v.replace("'", "&#39;")
        else:
            assert v and not any(ch in v for ch in " \t\n\r\f\"'=<>`"), v
        if self.nbsp_entity:
            v = v.replace("\u00a0", "&nbsp;")
        return "%s=%s%s%s" % (name, self.quote, v, self.quote)


@dataclass
class Img:
    attrs: list[Attr]
    upper: bool = False
    self_close: bool = False
    tag: str = "img"

    def first(self, name: str) -> Attr | None:
        for a in self.attrs:
            if a.name == name:
                return a
        return None

    def render(self) -> str:
        tag = self.tag.upper() if self.upper else self.tag
        inner = " ".join([tag] + [a.render(self.upper) for a in self.attrs])
        return "<%s%s>" % (inner, " /" if self.self_close else "")


def _text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _qattr(s: str) -> str:
    return _text(s).replace('"', "&quot;")


class PageBuilder:
    """Collects the HTML of one page in document order together with what a parser
    would see: the WAT ``Links`` entries and the ``<img>`` elements that count."""

    def __init__(self) -> None:
        self.html: list[str] = []
        self.links: list[dict] = []
        self.imgs: list[Img] = []
        self.n_img = 0

    def raw(self, s: str) -> None:
        self.html.append(s)

    def a(self, href: str, text: str) -> None:
        self.html.append('<a href="%s">%s</a>' % (_qattr(href), _text(text)))
        link = {"path": "A@/href", "url": href}
        if text:
            link["text"] = text
        self.links.append(link)

    def open_a(self, href: str) -> None:
        """An ``<a>`` whose content follows (no text in its Links entry)."""
        self.html.append('<a href="%s">' % _qattr(href))
        self.links.append({"path": "A@/href", "url": href})

    def img(self, img: Img, where: str = "body") -> None:
        """``where``: ``body`` (also used inside ``<noscript>``/``<picture>``), ``comment``
        or ``script`` (inside a ``document.write`` string: not markup)."""
        html = img.render()
        if where == "comment":
            assert "--" not in html
            self.html.append("<!-- %s -->" % html)
            return
        if where == "script":
            assert "'" not in html and "</" not in html
            self.html.append("<script>document.write('%s');</script>" % html)
            return
        self.html.append(html)
        self.n_img += img.tag == "img"
        src = img.first("src")
        if src is None or src.value is None:
            return
        if img.tag == "img":
            self.imgs.append(img)
            link = {"path": "IMG@/src", "url": src.value}
            alt = img.first("alt")
            if alt is not None and alt.value is not None:
                link["alt"] = alt.value
        else:
            link = {"path": "%s@/src" % img.tag.upper(), "url": src.value}
        self.links.append(link)

    def text(self) -> str:
        return "".join(self.html)


def spec_pairs(imgs: list[Img], base: str) -> list[list[str]]:
    """semantics section 2 applied to the page model: first src/alt of each counted <img>."""
    out, seen = [], set()
    for img in imgs:
        src, alt = img.first("src"), img.first("alt")
        if src is None or src.value is None or alt is None or alt.value is None:
            continue
        text = " ".join(alt.value.split())
        s = src.value.strip()
        if not text or not s:
            continue
        url = urljoin(base, s)
        if urlsplit(url).scheme not in ("http", "https"):
            continue
        if (url, text) not in seen:
            seen.add((url, text))
            out.append([url, text])
    return out


@dataclass
class Page:
    url: str
    lang: str
    status: int
    content_type: str          # HTTP Content-Type header value
    charset: str               # real encoding of the body
    body: bytes
    is_html: bool
    title: str = ""
    base_href: str | None = None
    head: dict = field(default_factory=dict)
    links: list = field(default_factory=list)
    pairs: list = field(default_factory=list)
    n_img: int = 0
    extra_headers: list = field(default_factory=list)


