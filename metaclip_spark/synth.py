"""Deterministic generator of small CommonCrawl-style corpora with ground truth.

    python -m metaclip_spark.synth --pages N --seed S --out DIR [--files K]

or ``make_corpus(out_dir, pages, seed, files=1)``, which returns the manifest. For each
file ``i`` (zero-padded to 5 digits) it writes to ``DIR``:

``SYNTH-<seed>-<i>.warc.gz``
    a ``warcinfo`` record, then per capture a ``request``, a ``response`` and a
    ``metadata`` record; every record is its own gzip member (warcio's ``WARCWriter``,
    ``gzip=True``: zlib gzip headers carry no file name and mtime 0).
``SYNTH-<seed>-<i>.warc.wat.gz``
    a ``warcinfo`` record, then one ``metadata`` record (JSON, CommonCrawl WAT layout)
    per WARC record, in the same order, ``WARC-Refers-To`` = the WARC record id.
    HTML responses carry ``Envelope.Payload-Metadata.HTTP-Response-Metadata.HTML-Metadata``
    = ``{"Head": {Metas, Title, [Base], Link}, "Links": [...]}``; the ``Links``
    entries are the attribute values as an HTML parser returns them (entity-decoded,
    not resolved, first of a repeated attribute); ``IMG@/src`` entries carry ``alt``
    only when the ``<img>`` has an ``alt`` with a value. ``Container`` is
    ``{Filename, Compressed, Offset}`` with the offset a string, as in CC (CC's
    ``Gzip-Metadata`` and ``IsCompressed`` are left out, and requests/metadata records
    carry no digests, warcinfo id or IP address, to keep the files small).
``SYNTH-<seed>-<i>.truth.jsonl.gz``
    one line per HTML response (any status): ``page_url``, ``warc_record_id``,
    ``status``, ``lang``, ``charset`` (the real encoding), ``base_href``, ``pairs``
    ``[[abs_url, text], ...]`` following SPEC section 2.
``MANIFEST.json``
    files (size, sha256), record counts, HTML pages, truth pairs, languages, charsets.

The truth is computed from the generator's own page model (the decoded attribute
values it renders), never by parsing the HTML it writes; ``tests/test_synth.py`` checks
it against an independent ``html.parser`` derivation from the WARC bytes and against
the WAT ``Links``.

Everything is derived from the seed: a seeded ``random.Random`` per file, WARC-Date
values from the seed, record ids ``uuid5`` of (seed, file, record number). The same
arguments give byte-identical files (given the same zlib).

All host names are sub-domains of the IANA-reserved ``example.com``/``.org``/``.net``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import io
import json
import os
import random
import sys
import uuid
import zlib
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

GENERATOR = "metaclip_spark.synth"
GENERATOR_VERSION = 1
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://metaclip-spark.example.org/synth")
_EPOCH = _dt.datetime(2024, 2, 20, 0, 0, 0)
_USER_AGENT = "CCBot/2.0 (https://commoncrawl.org/faq/)"

# --------------------------------------------------------------------------------------
# Vocabulary


COLORS = ["red", "blue", "green", "yellow", "black", "white", "brown", "gray", "pink",
          "orange", "purple", "golden", "silver", "dark", "bright"]
NOUNS = ["car", "dog", "cat", "house", "tree", "flower", "dress", "shirt", "table", "chair",
         "bird", "horse", "boat", "bicycle", "door", "cake", "bottle", "book", "bridge",
         "lamp", "sofa", "guitar", "mountain", "beach", "kitchen", "garden", "street",
         "train", "shoe", "truck"]
SURFACES = ["table", "beach", "street", "wooden floor", "kitchen counter",
            "white background", "grass", "snow", "sand"]
PLACES = ["old town", "harbor", "castle", "river", "main square", "city hall", "lake",
          "valley", "tower", "market"]
CITIES = ["London", "Paris", "New York", "Chicago", "Sydney", "Toronto", "Berlin",
          "Seattle", "Austin", "Denver"]
FIRST = ["John", "Mary", "David", "Sarah", "James", "Emma", "Michael", "Laura", "Robert", "Anna"]
LAST = ["Smith", "Johnson", "Brown", "Taylor", "Miller", "Wilson", "Moore", "Clark",
        "Walker", "Hall"]
BRANDS = ["Northwind", "Contoso", "Fabrikam", "Acme", "Globex", "Initech", "Vandelay", "Tailspin"]
PRODUCTS = ["Running Shoe", "Coffee Maker", "Wireless Headphones", "Desk Lamp", "Backpack",
            "Water Bottle", "Smart Watch", "Office Chair"]
EVENTS = ["annual meeting", "summer festival", "charity run", "book launch",
          "award ceremony", "farmers market"]
EN_PARAGRAPHS = [
    "Welcome to our blog. We post new pictures and stories every week.",
    "Here you can find reviews, guides and photos from our readers.",
    "This article was updated last month with new information and images.",
    "Our team tested every product in real life before writing this review.",
    "Scroll down to see the full gallery and leave a comment below.",
    "Prices and availability may change, so check the shop for the latest offers.",
    "The weather was perfect and we took hundreds of pictures along the way.",
    "Sign up for our newsletter to get the best stories in your inbox.",
]
EN_NAV = [("/", "Home"), ("/about", "About us"), ("/blog/", "Blog")]

# Non-English pages: titles, a paragraph, navigation and alt texts written in the language.
FOREIGN = {
    "de": {
        "logo": "Firmenlogo",
        "titles": ["Urlaub am Bodensee", "Rezepte für den Sommer", "Neuigkeiten aus München",
                   "Unser Angebot im Überblick"],
        "paras": ["Willkommen auf unserer Seite. Hier finden Sie aktuelle Berichte und viele Bilder.",
                  "Die schönsten Ausflugsziele für die ganze Familie."],
        "nav": [("/", "Startseite"), ("/ueber-uns", "Über uns"), ("/kontakt", "Kontakt")],
        "alts": ["Ein rotes Auto vor dem Haus", "Blick auf den Bodensee bei Sonnenuntergang",
                 "Unser Team im Büro", "Frühstück mit Brötchen und Kaffee",
                 "Straße in München im Winter", "Kinder spielen im Garten",
                 "Schwarzwälder Kirschtorte", "Wanderweg in den Alpen"],
        "hosts": ["reise.example.org", "www.kochen.example.com"],
        "charsets": ["utf-8", "iso-8859-1"],
    },
    "fr": {
        "logo": "Logo de l'entreprise",
        "titles": ["Recettes de saison", "Voyage en Provence", "Actualités de Paris",
                   "Nos meilleures adresses"],
        "paras": ["Bienvenue sur notre site. Découvrez nos articles et nos photos.",
                  "Les plus belles balades à faire en famille cet été."],
        "nav": [("/", "Accueil"), ("/a-propos", "À propos"), ("/contact", "Contact")],
        "alts": ["Une voiture rouge garée devant la maison",
                 "Vue sur la tour Eiffel depuis le Trocadéro", "Recette de la tarte aux pommes",
                 "Château de Chambord en été", "Marché de Noël à Strasbourg",
                 "Plage de Biarritz au coucher du soleil", "Croissants et café au lait",
                 "L'équipe de rédaction"],
        "hosts": ["www.cuisine.example.net", "voyage.example.org"],
        "charsets": ["utf-8", "windows-1252"],
    },
    "es": {
        "logo": "Logotipo",
        "titles": ["Recetas de cocina", "Viajes por Andalucía", "Noticias de Madrid",
                   "Nuestras ofertas"],
        "paras": ["Bienvenido a nuestra página. Aquí encontrará noticias y muchas fotos.",
                  "Los mejores destinos para visitar en familia."],
        "nav": [("/", "Inicio"), ("/quienes-somos", "Quiénes somos"), ("/contacto", "Contacto")],
        "alts": ["Un coche rojo aparcado en la calle", "Vista de la playa al atardecer",
                 "Paella valenciana con mariscos", "Niños jugando en el parque",
                 "La Sagrada Familia en Barcelona", "Mercado de San Miguel en Madrid",
                 "Tortilla de patatas casera", "Montañas de Sierra Nevada con nieve"],
        "hosts": ["www.recetas.example.com", "viajes.example.net"],
        "charsets": ["utf-8"],
    },
    "ru": {
        "logo": "Логотип компании",
        "titles": ["Новости Москвы", "Рецепты домашней кухни", "Путешествия по России",
                   "Наши товары"],
        "paras": ["Добро пожаловать на наш сайт. Здесь вы найдёте новости и фотографии.",
                  "Лучшие места для отдыха всей семьёй."],
        "nav": [("/", "Главная"), ("/o-nas", "О нас"), ("/kontakty", "Контакты")],
        "alts": ["Красная машина на улице", "Вид на Кремль с реки", "Логотип компании",
                 "Рецепт борща со сметаной", "Зимний лес под Москвой", "Дети играют во дворе",
                 "Собор Василия Блаженного", "Озеро Байкал летом"],
        "hosts": ["novosti.example.com", "www.recepty.example.org"],
        "charsets": ["windows-1251"],
    },
    "ja": {
        "logo": "会社のロゴ",
        "titles": ["東京の観光ガイド", "今日のレシピ", "新商品のお知らせ", "旅行ブログ"],
        "paras": ["私たちのサイトへようこそ。最新のニュースと写真をお届けします。",
                  "家族で楽しめるおすすめの場所を紹介します。"],
        "nav": [("/", "ホーム"), ("/about", "会社概要"), ("/contact", "お問い合わせ")],
        "alts": ["赤い車", "富士山と桜", "会社のロゴ", "東京タワーの夜景", "猫が寝ている写真",
                 "京都の金閣寺", "ラーメンと餃子", "北海道の雪景色"],
        "hosts": ["www.kanko.example.net", "blog.ryokou.example.com"],
        "charsets": ["utf-8"],
    },
}
EN_HOSTS = ["www.cars.example.com", "shop.example.com", "news.example.org", "food.example.net",
            "travel.example.com", "photos.example.org", "home.example.com", "reviews.example.net"]
CDN_HOSTS = ["cdn.example.net", "static.example.com", "images.example.org",
             "media.example.com"]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def english_alt(rng: random.Random) -> str:
    """An English alt text: mostly lower-case phrases made of common words (they match
    the default metadata), some that match nothing (``Logo``, product names, file names)."""
    c, n, n2 = rng.choice(COLORS), rng.choice(NOUNS), rng.choice(NOUNS)
    k = rng.randrange(24)
    if k == 0:
        return "a photo of a %s %s" % (c, n)
    if k == 1:
        return "%s %s on the %s" % (_cap(c), n, rng.choice(SURFACES))
    if k == 2:
        return "close-up of a %s %s" % (c, n)
    if k == 3:
        return "%s %s %s%d" % (rng.choice(BRANDS), rng.choice(PRODUCTS), rng.choice("XSGT"),
                               rng.randrange(1, 10))
    if k == 4:
        return "%d.%d stars" % (rng.randrange(1, 5), rng.choice([0, 5]))
    if k == 5:
        return "%d out of 5 stars" % rng.randrange(1, 6)
    if k == 6:
        return rng.choice(["Logo", "logo", "LOGO", "Thumbnail", "IMG_%04d.JPG" % rng.randrange(10000)])
    if k == 7:
        return "Portrait of %s %s" % (rng.choice(FIRST), rng.choice(LAST))
    if k == 8:
        return "%s %s at the %s in %s, %d" % (rng.choice(FIRST), rng.choice(LAST),
                                             rng.choice(EVENTS), rng.choice(CITIES),
                                             rng.randrange(2005, 2025))
    if k == 9:
        return "View of the %s from the %s." % (rng.choice(PLACES), rng.choice(PLACES))
    if k == 10:
        return "how to clean your %s: a step-by-step guide" % n
    if k == 11:
        return rng.choice(["Click here!", "Buy now", "read more", "Read more...", "photo",
                           "image", "thumbnail"])
    if k == 12:
        return "Figure %d: the %s %s in the %s" % (rng.randrange(1, 12), c, n, rng.choice(PLACES))
    if k == 13:
        return "sunset over the %s\nwith mountains in the background" % rng.choice(["lake", "sea", "river"])
    if k == 14:
        return "%s\u00a0%s for sale" % (c, n)
    if k == 15:
        return "\t%s %s and a %s %s\t" % (c, n, rng.choice(COLORS), n2)
    if k == 16:
        return "Fish & Chips with %s peas" % rng.choice(["green", "fresh", "mushy"])
    if k == 17:
        return 'The "best" %s in %s' % (n, rng.choice(CITIES))
    if k == 18:
        return "mom's homemade %s pie" % rng.choice(["apple", "cherry", "pumpkin"])
    if k == 19:
        return rng.choice(["hot dog stand at the %s" % rng.choice(EVENTS), "Hot Dog!",
                           "hot-dog with mustard", "ice cream on a hot day"])
    if k == 20:
        return "Café menu \u2013 today's specials"
    if k == 21:
        return "a %s %s and two %ss in the %s" % (c, n, n2, rng.choice(PLACES))
    if k == 22:
        return "%s %s  with  extra   spaces " % (c, n)
    return "my %s %s (%d)" % (c, n, rng.randrange(2, 30))


def foreign_alt(rng: random.Random, lang: str) -> str:
    alt = rng.choice(FOREIGN[lang]["alts"])
    r = rng.randrange(6)
    if r == 0 and lang == "ja":
        alt = alt + "\u3000" + rng.choice(FOREIGN[lang]["alts"])
    elif r == 0:
        alt = alt.replace(" ", "\u00a0", 1)
    elif r == 1:
        alt = alt + "\n" + rng.choice(FOREIGN[lang]["alts"])
    return alt


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
    """SPEC section 2 applied to the page model: first src/alt of each counted <img>."""
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


# --------------------------------------------------------------------------------------
# Page generation


class _Gen:
    """Page generator for one file (its own seeded Random)."""

    BASE_VARIANTS = ["other_host", "root_relative", "relative", "self", "target_only"]
    EDGES = ["comment", "script", "lazy_noscript", "srcset_only", "data_src_only", "picture",
             "upper", "dup_exact", "dup_src_other_alt", "repeat_attr", "empty_alt", "ws_alt",
             "missing_alt", "valueless_alt", "empty_src", "ws_src", "padded_src", "js_src",
             "about_blank", "data_uri", "amp_src", "raw_amp_src", "space_path",
             "nonascii_path", "upper_scheme", "protocol_relative", "dotdot", "single_quote",
             "unquoted", "self_close", "input_image", "title_only", "nbsp_entity_alt"]

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.image_urls: list[str] = []
        self.edge_pos = rng.randrange(len(self.EDGES))
        self.html_count = 0

    # -- small helpers -----------------------------------------------------------------
    def alt(self, lang: str) -> str:
        return english_alt(self.rng) if lang == "en" else foreign_alt(self.rng, lang)

    def name(self, ext: str | None = None) -> str:
        r = self.rng
        return "%s-%d%s" % (r.choice(NOUNS), r.randrange(100, 10000),
                            ext or r.choice([".jpg", ".jpg", ".jpg", ".png", ".webp", ".jpeg"]))

    def src(self, page_url: str) -> str:
        r = self.rng
        host = urlsplit(page_url).netloc
        k = r.choices(range(9), weights=[30, 30, 8, 6, 5, 3, 6, 4, 4])[0]
        if k == 0:
            return "https://%s/img/%d/%s" % (r.choice(CDN_HOSTS), r.randrange(10, 99), self.name())
        if k == 1:
            return "/wp-content/uploads/20%d/%02d/%s" % (r.randrange(18, 25), r.randrange(1, 13), self.name())
        if k == 2:
            return "%s://%s/images/%s" % (urlsplit(page_url).scheme, host, self.name())
        if k == 3:
            return "img/" + self.name()
        if k == 4:
            return "../images/" + self.name()
        if k == 5:
            return self.name()
        if k == 6:
            return "//%s/photos/%s" % (r.choice(CDN_HOSTS), self.name())
        if k == 7:
            return "http://%s/gallery/%s" % (r.choice(CDN_HOSTS), self.name())
        return "data:image/gif;base64,R0lGODlhAQABAAAAACw="

    def plain_img(self, src: str, alt: str | None, **kw) -> Img:
        attrs = [Attr("src", src)]
        if alt is not None:
            attrs.append(Attr("alt", alt))
        if self.rng.random() < 0.3:
            attrs.append(Attr("width", str(self.rng.choice([120, 300, 640, 800]))))
        if self.rng.random() < 0.2:
            attrs.insert(0, Attr("class", self.rng.choice(["thumb", "wp-image", "photo lazy", "img-fluid"])))
        return Img(attrs, **kw)

    # -- edge cases ----------------------------------------------------------------------
    def edge(self, b: PageBuilder, kind: str, lang: str, page_url: str, charset: str) -> None:
        r = self.rng
        alt = self.alt(lang)
        if kind == "comment":
            b.img(Img([Attr("src", "/old/banner-%d.jpg" % r.randrange(100)),
                       Attr("alt", "old banner")]), "comment")
        elif kind == "script":
            b.img(Img([Attr("src", "/pixel.gif?id=%d" % r.randrange(1000)),
                       Attr("alt", "tracking pixel")]), "script")
        elif kind == "lazy_noscript":
            real = self.src(page_url)
            if real.startswith("data:"):
                real = "/lazy/" + self.name()
            b.raw("\n<div class=\"lazy\">")
            b.img(Img([Attr("src", "data:image/gif;base64,R0lGODlhAQABAAAAACw="),
                       Attr("data-src", real), Attr("alt", alt), Attr("class", "lazyload")]))
            b.raw("<noscript>")
            b.img(Img([Attr("src", real), Attr("alt", alt)]))
            b.raw("</noscript></div>")
        elif kind == "srcset_only":
            n1, n2 = self.name(".jpg"), self.name(".jpg")
            b.img(Img([Attr("srcset", "/img/%s 1x, /img/%s 2x" % (n1, n2)), Attr("alt", alt)]))
        elif kind == "data_src_only":
            b.img(Img([Attr("data-src", "/img/" + self.name()), Attr("alt", alt)]))
        elif kind == "picture":
            b.raw("\n<picture><source srcset=\"/img/%s\" type=\"image/webp\">" % self.name(".webp"))
            b.img(Img([Attr("src", self.src(page_url)), Attr("alt", alt)]))
            b.raw("</picture>")
        elif kind == "upper":
            b.img(Img([Attr("src", self.src(page_url)), Attr("alt", alt)], upper=True))
        elif kind == "dup_exact":
            img = Img([Attr("src", self.src(page_url)), Attr("alt", alt)])
            b.img(img)
            b.raw("\n")
            b.img(img)
        elif kind == "dup_src_other_alt":
            s = self.src(page_url)
            b.img(Img([Attr("src", s), Attr("alt", alt)]))
            b.img(Img([Attr("src", s), Attr("alt", self.alt(lang))]))
            b.img(Img([Attr("src", " " + s), Attr("alt", "  " + alt)]))  # same pair again
        elif kind == "repeat_attr":
            b.img(Img([Attr("src", self.src(page_url)), Attr("alt", alt),
                       Attr("alt", "second alt ignored")]))
            b.img(Img([Attr("src", "/first/" + self.name()), Attr("src", "/second/" + self.name()),
                       Attr("alt", self.alt(lang))]))
        elif kind == "empty_alt":
            b.img(Img([Attr("src", self.src(page_url)), Attr("alt", "")]))
        elif kind == "ws_alt":
            b.img(Img([Attr("src", self.src(page_url)),
                       Attr("alt", r.choice(["   ", "\u00a0", "\t\n ", "\u3000" if charset == "utf-8" else "\r\n"]),
                            nbsp_entity=r.random() < 0.5)]))
        elif kind == "missing_alt":
            b.img(Img([Attr("src", self.src(page_url))]))
        elif kind == "valueless_alt":
            b.img(Img([Attr("src", self.src(page_url)), Attr("alt", None)]))
        elif kind == "empty_src":
            b.img(Img([Attr("src", ""), Attr("alt", alt)]))
        elif kind == "ws_src":
            b.img(Img([Attr("src", "  \n "), Attr("alt", alt)]))
        elif kind == "padded_src":
            b.img(Img([Attr("src", "  /media/%s\n" % self.name()), Attr("alt", alt)]))
        elif kind == "js_src":
            b.img(Img([Attr("src", "javascript:void(0)"), Attr("alt", alt)]))
        elif kind == "about_blank":
            b.img(Img([Attr("src", "about:blank"), Attr("alt", alt)]))
        elif kind == "data_uri":
            b.img(Img([Attr("src", "data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22/%3E"),
                       Attr("alt", alt)]))
        elif kind == "amp_src":
            b.img(Img([Attr("src", "/resize.php?file=%s&w=%d&h=%d" % (self.name(), 640, 480)),
                       Attr("alt", alt)]))
        elif kind == "raw_amp_src":
            b.img(Img([Attr("src", "https://%s/thumb?id=%d&w=300&h=200" % (r.choice(CDN_HOSTS), r.randrange(10**6)),
                            raw_amp=True), Attr("alt", alt)]))
        elif kind == "space_path":
            b.img(Img([Attr("src", "/images/my photo %d.jpg" % r.randrange(100)), Attr("alt", alt)]))
        elif kind == "nonascii_path":
            path = {"ru": "/\u0444\u043e\u0442\u043e/\u0443\u043b\u0438\u0446\u0430-%d.jpg",
                    "ja": "/\u5199\u771f/\u6771\u4eac-%d.jpg"}.get(lang, "/bilder/stra\u00dfe-m\u00fcnchen-%d.jpg")
            b.img(Img([Attr("src", path % r.randrange(100)),
                       Attr("alt", alt)]))
        elif kind == "upper_scheme":
            b.img(Img([Attr("src", "HTTPS://%s/Img/%s" % (r.choice(CDN_HOSTS).upper(), self.name())),
                       Attr("alt", alt)]))
        elif kind == "protocol_relative":
            b.img(Img([Attr("src", "//%s/p/%s" % (r.choice(CDN_HOSTS), self.name())), Attr("alt", alt)]))
        elif kind == "dotdot":
            b.img(Img([Attr("src", "../../assets/./img/%s" % self.name()), Attr("alt", alt)]))
        elif kind == "single_quote":
            b.img(Img([Attr("src", "/img/" + self.name(), quote="'"),
                       Attr("alt", "mom's " + alt if lang == "en" else alt + " 'x'", quote="'")]))
        elif kind == "unquoted":
            b.img(Img([Attr("src", "/img/" + self.name(), quote=""),
                       Attr("alt", r.choice(["thumbnail", "photo", "Logo"]), quote="")]))
        elif kind == "self_close":
            b.img(Img([Attr("src", self.src(page_url)), Attr("alt", alt)], self_close=True))
        elif kind == "input_image":
            b.img(Img([Attr("type", "image"), Attr("src", "/btn/search.png"), Attr("alt", "search")],
                      tag="input"))
        elif kind == "title_only":
            b.img(Img([Attr("src", self.src(page_url)), Attr("title", alt)]))
        elif kind == "nbsp_entity_alt":
            b.img(Img([Attr("src", self.src(page_url)),
                       Attr("alt", "\u00a0" + alt.replace(" ", "\u00a0", 2) + "\u00a0", nbsp_entity=True)]))
        else:  # pragma: no cover
            raise AssertionError(kind)
        b.raw("\n")

    # -- pages ---------------------------------------------------------------------------
    def page_url(self, lang: str, k: int) -> str:
        r = self.rng
        host = r.choice(EN_HOSTS if lang == "en" else FOREIGN[lang]["hosts"])
        slug = "%s-%s" % (r.choice(COLORS), r.choice(NOUNS))
        p = r.randrange(5)
        if p == 0:
            return "https://%s/blog/20%d/%s-%d.html" % (host, r.randrange(18, 25), slug, k)
        if p == 1:
            return "http://%s/%s/%s-%d/" % (host, r.choice(["news", "shop"]), slug, k)
        if p == 2:
            return "https://%s/index.php?id=%d&lang=%s" % (host, k, lang)
        if p == 3:
            return "https://%s/%s-%d" % (host, slug, k)
        return "https://%s/a/b/%s-%d.htm" % (host, slug, k)

    def html_page(self, lang: str, k: int) -> Page:
        r = self.rng
        self.html_count += 1
        hno = self.html_count
        url = self.page_url(lang, k)
        if lang == "en":
            charset = "utf-8"
            c, n = r.choice(COLORS), r.choice(NOUNS)
            title = r.choice(["%s %ss for sale in %s" % (_cap(c), n, r.choice(CITIES)),
                              "How to clean your %s" % n, "%s travel guide" % r.choice(CITIES),
                              "%s %s review" % (r.choice(BRANDS), r.choice(PRODUCTS)),
                              "Best %s recipes & tips" % r.choice(["cake", "pie", "bread"])])
            paras = EN_PARAGRAPHS
            nav = EN_NAV
        else:
            data = FOREIGN[lang]
            charset = r.choice(data["charsets"])
            title = r.choice(data["titles"])
            paras = data["paras"]
            nav = data["nav"]
        # where the charset is declared: HTTP header, <meta charset>, http-equiv, both, none
        decl = r.choice(["http", "http", "meta", "both", "equiv"] + (["none"] if charset == "utf-8" else []))
        ctype = "text/html; charset=%s" % charset.upper() if decl in ("http", "both") else "text/html"
        # base href (every 9th HTML page, cycling through the variants)
        base_tag = None
        base_href = None
        if hno % 9 == 4:
            variant = self.BASE_VARIANTS[(hno // 9) % len(self.BASE_VARIANTS)]
            if variant == "other_host":
                base_href = "https://%s/assets/v%d/" % (r.choice(CDN_HOSTS), r.randrange(1, 9))
            elif variant == "root_relative":
                base_href = "/%s/static/" % lang
            elif variant == "relative":
                base_href = "sub/dir/"
            elif variant == "self":
                base_href = url
            if base_href is None:
                base_tag = '<base target="_blank">'
            else:
                base_tag = '<base href="%s" target="_self">' % _qattr(base_href)

        b = PageBuilder()
        b.raw('<!DOCTYPE html>\n<html lang="%s">\n<head>\n' % lang)
        metas = []
        if decl in ("meta", "both"):
            b.raw('<meta charset="%s">\n' % charset)
            metas.append({"charset": charset})
        elif decl == "equiv":
            b.raw('<meta http-equiv="Content-Type" content="text/html; charset=%s">\n' % charset)
            metas.append({"http-equiv": "Content-Type", "content": "text/html; charset=%s" % charset})
        b.raw("<title>%s</title>\n" % _text(title))
        if base_tag:
            b.raw(base_tag + "\n")
        b.raw('<link rel="stylesheet" href="/static/site.css">\n')
        head = {"Metas": metas, "Title": title}
        if base_href is not None:
            head["Base"] = base_href
        head["Link"] = [{"path": "LINK@/href", "url": "/static/site.css", "rel": "stylesheet"}]
        b.raw("</head>\n<body>\n<header>")
        b.open_a("/")
        logo_alt = "Logo" if lang == "en" or r.random() < 0.5 else FOREIGN[lang]["logo"]
        b.img(Img([Attr("src", "/static/logo.png"), Attr("alt", logo_alt)]))
        b.raw("</a>\n<nav>")
        for href, label in nav:
            b.a(href, label)
            b.raw(" ")
        b.raw("</nav></header>\n<main>\n<h1>%s</h1>\n<p>%s</p>\n" % (_text(title), _text(r.choice(paras))))
        # regular content images
        for _ in range(r.randint(2, 5)):
            alt = self.alt(lang) if r.random() < 0.9 else None
            b.img(self.plain_img(self.src(url), alt))
            b.raw("\n")
        # two or three edge cases, cycling through the list
        for _ in range(r.choice([2, 3, 3])):
            self.edge(b, self.EDGES[self.edge_pos % len(self.EDGES)], lang, url, charset)
            self.edge_pos += 1
        b.raw("</main>\n<footer>")
        b.a("/privacy", "Privacy")
        b.raw(" &copy; 2024</footer>\n</body>\n</html>\n")
        html = b.text()
        body = html.encode(charset)
        base = urljoin(url, base_href) if base_href is not None else url
        pairs = spec_pairs(b.imgs, base)
        for p_url, _ in pairs:  # candidates for image/jpeg captures (plain ASCII URLs only)
            if len(self.image_urls) < 200 and p_url.isascii() and " " not in p_url:
                self.image_urls.append(p_url)
        extra = [("Content-Language", lang)] if lang != "en" else []
        return Page(url=url, lang=lang, status=200, content_type=ctype, charset=charset, body=body,
                    is_html=True, title=title, base_href=base_href, head=head, links=b.links,
                    pairs=pairs, n_img=b.n_img, extra_headers=extra)

    def not_found_page(self, k: int) -> Page:
        r = self.rng
        url = "https://%s/missing/%s-%d.html" % (r.choice(EN_HOSTS), r.choice(NOUNS), k)
        title = "404 Not Found"
        b = PageBuilder()
        b.raw('<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>%s</title></head>\n<body>\n' % title)
        b.img(Img([Attr("src", "/static/logo.png"), Attr("alt", "Logo")]))
        b.raw("\n<h1>Page not found</h1>\n")
        b.img(Img([Attr("src", "/static/404-robot.png"), Attr("alt", "a sad robot looking at a broken link")]))
        b.raw("\n<p>")
        b.a("/", "Back to the home page")
        b.raw("</p>\n</body>\n</html>\n")
        pairs = spec_pairs(b.imgs, url)
        return Page(url=url, lang="en", status=404, content_type="text/html; charset=utf-8",
                    charset="utf-8", body=b.text().encode("utf-8"), is_html=True, title=title,
                    head={"Metas": [{"charset": "utf-8"}], "Title": title}, links=b.links,
                    pairs=pairs, n_img=b.n_img)

    def redirect_page(self, k: int) -> Page:
        r = self.rng
        host = r.choice(EN_HOSTS)
        url = "http://%s/old-page-%d" % (host, k)
        target = "https://%s/new-page-%d" % (host, k)
        title = "301 Moved Permanently"
        b = PageBuilder()
        b.raw("<html><head><title>%s</title></head><body>\n<h1>Moved Permanently</h1>\n"
              "<p>The document has moved " % title)
        b.a(target, "here")
        b.raw(".</p>\n</body></html>\n")
        return Page(url=url, lang="en", status=301, content_type="text/html; charset=iso-8859-1",
                    charset="iso-8859-1", body=b.text().encode("iso-8859-1"), is_html=True,
                    title=title, head={"Metas": [], "Title": title}, links=b.links, pairs=[],
                    n_img=0, extra_headers=[("Location", target)])

    def jpeg(self, k: int) -> Page:
        r = self.rng
        if self.image_urls:
            url = r.choice(self.image_urls)
        else:
            url = "https://%s/img/%s" % (r.choice(CDN_HOSTS), self.name(".jpg"))
        body = (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
                + bytes(r.getrandbits(8) for _ in range(r.randrange(200, 600))) + b"\xff\xd9")
        return Page(url=url, lang="", status=200, content_type="image/jpeg", charset="",
                    body=body, is_html=False)


def _schedule(n: int, rng: random.Random) -> list[tuple[str, str]]:
    """Kinds of the n captures of one file: ("html", lang), ("404", ""), ("301", ""),
    ("jpeg", ""); English fills what the other kinds leave."""
    kinds: list[tuple[str, str]] = []
    kinds += [("jpeg", "")] * max(1, n // 20)
    kinds += [("404", "")] * max(1, n // 30)
    kinds += [("301", "")] * max(1, n // 60)
    for lang in ("de", "fr", "es", "ru", "ja"):
        kinds += [("html", lang)] * max(1, n // 30)
    # keep at least half English; drop the optional kinds from the end if n is small
    while kinds and len(kinds) > n // 2:
        kinds.pop()
    kinds += [("html", "en")] * (n - len(kinds))
    rng.shuffle(kinds)
    return kinds


# --------------------------------------------------------------------------------------
# WARC / WAT writing


def _date(seed: int, seconds: int) -> str:
    t = _EPOCH + _dt.timedelta(days=seed % 97, seconds=(seed * 7919) % 86400 + seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _http_date(iso: str) -> str:
    t = _dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")
    return t.strftime("%a, %d %b %Y %H:%M:%S GMT")



class _ArchiveOut:
    """One output file made of gzip members, with bookkeeping for the WAT."""

    def __init__(self, name: str, seed: int, file_index: int, part: str):
        self.name, self.seed, self.file_index, self.part = name, seed, file_index, part
        self.buf = io.BytesIO()
        self.count = 0
        self.entries: list[dict] = []

    def record_id(self) -> str:
        self.count += 1
        u = uuid.uuid5(_NAMESPACE, "%d/%d/%s/%d" % (self.seed, self.file_index, self.part, self.count))
        return "<urn:uuid:%s>" % u

    def write(self, record, **info) -> dict:
        member = io.BytesIO()
        _Writer(member, gzip=True).write_record(record)
        data = member.getvalue()
        offset = self.buf.tell()
        self.buf.write(data)
        inflated = zlib.decompress(data, zlib.MAX_WBITS + 16)
        header_len = inflated.index(b"\r\n\r\n") + 4
        entry = {"offset": offset, "member": data, "inflated": inflated,
                 "header_len": header_len, "record": record}
        entry.update(info)
        self.entries.append(entry)
        return entry


class _Writer(WARCWriter):
    """warcio's writer, adding digests (block and payload) to ``response`` records only,
    as CommonCrawl does; requests, metadata, warcinfo and WAT records get none."""

    def ensure_digest(self, record, block=True, payload=True):
        if record.rec_type == "response":
            super().ensure_digest(record, block, payload)


def _warc_fields(fields: list[tuple[str, str]]) -> bytes:
    return "".join("%s: %s\r\n" % kv for kv in fields).encode("utf-8")


def _header_dict(headers: list[tuple[str, str]]) -> dict:
    out: dict = {}
    for k, v in headers:
        out.setdefault(k, v)
    return out


def _wat_envelope(warc_name: str, e: dict) -> dict:
    rec = e["record"]
    # CC also writes "IsCompressed" and "Gzip-Metadata" here; left out to keep files small.
    container = {"Filename": warc_name, "Compressed": True, "Offset": str(e["offset"])}
    block_len = int(rec.rec_headers.get_header("Content-Length"))
    pm: dict = {}
    rtype = rec.rec_type
    if rtype in ("warcinfo", "metadata"):
        pm["Actual-Content-Type"] = "application/warc-fields"
        key = "WARC-Info-Metadata" if rtype == "warcinfo" else "WARC-Metadata-Metadata"
        if rtype == "warcinfo":
            pm[key] = dict(e["fields"])
        else:
            pm[key] = {"Metadata-Records": [{"Name": k, "Value": v} for k, v in e["fields"]]}
        pm["Actual-Content-Length"] = str(block_len)
        pm["Trailing-Slop-Length"] = "0"
    else:
        http = rec.http_headers
        hlen = len(http.headers_buff)
        if rtype == "request":
            method, rest = http.protocol, http.statusline
            path, version = rest.rsplit(" ", 1)
            pm["Actual-Content-Type"] = "application/http; msgtype=request"
            pm["HTTP-Request-Metadata"] = {
                "Headers-Length": str(hlen),
                "Entity-Length": str(block_len - hlen),
                "Request-Message": {"Method": method, "Path": path, "Version": version},
                "Headers": _header_dict(http.headers),
            }
        else:
            page: Page = e["page"]
            status, reason = http.statusline.split(" ", 1)
            resp = {
                "Headers-Length": str(hlen),
                "Entity-Length": str(len(page.body)),
                "Response-Message": {"Status": status, "Version": http.protocol, "Reason": reason},
                "Headers": _header_dict(http.headers),
                "Entity-Digest": rec.rec_headers.get_header("WARC-Payload-Digest"),
            }
            if page.is_html:
                resp["HTML-Metadata"] = {"Head": page.head, "Links": page.links}
            pm["Actual-Content-Type"] = "application/http; msgtype=response"
            pm["HTTP-Response-Metadata"] = resp
        pm["Actual-Content-Length"] = str(block_len)
        if rec.rec_headers.get_header("WARC-Block-Digest"):
            pm["Block-Digest"] = rec.rec_headers.get_header("WARC-Block-Digest")
        pm["Trailing-Slop-Length"] = "4"
    envelope = {
        "Payload-Metadata": pm,
        "Format": "WARC",
        "WARC-Header-Length": str(e["header_len"]),
        "WARC-Header-Metadata": _header_dict(rec.rec_headers.headers),
    }
    return {"Container": container, "Envelope": envelope}


def _cld2(page: Page) -> str:
    lang = page.lang or "en"
    return json.dumps({"reliable": True, "languages": [{"code": lang, "text-covered": 0.97}]},
                      separators=(",", ":"))


def _make_file(out_dir: str, seed: int, file_index: int, first_k: int, n: int) -> dict:
    prefix = "SYNTH-%d-%05d" % (seed, file_index)
    warc_name, wat_name, truth_name = prefix + ".warc.gz", prefix + ".warc.wat.gz", prefix + ".truth.jsonl.gz"
    rng = random.Random("metaclip-spark-synth/%d/%d" % (seed, file_index))
    gen = _Gen(rng)
    kinds = _schedule(n, rng)
    warc = _ArchiveOut(warc_name, seed, file_index, "warc")
    t0 = file_index * 10000

    info_fields = [("software", "%s/%d" % (GENERATOR, GENERATOR_VERSION)),
                   ("format", "WARC File Format 1.0"),
                   ("conformsTo", "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.0/"),
                   ("isPartOf", "SYNTH-%d" % seed),
                   ("description", "Synthetic CommonCrawl-style capture for tests (metaclip-spark)"),
                   ("robots", "checked via crawler-commons"),
                   ("operator", "metaclip-spark test generator")]
    info_id = warc.record_id()
    payload = _warc_fields(info_fields)
    rec = _Writer(None).create_warc_record(
        "", "warcinfo", payload=io.BytesIO(payload), length=len(payload),
        warc_headers_dict={"WARC-Type": "warcinfo", "WARC-Date": _date(seed, t0),
                           "WARC-Record-ID": info_id, "WARC-Filename": warc_name})
    warc.write(rec, fields=info_fields)

    truth_lines = []
    stats = {"html_pages": 0, "truth_pairs": 0, "languages": {}, "charsets": {}, "statuses": {},
             "content_types": {}, "img_tags": 0}
    builder = _Writer(None)
    for j, (kind, lang) in enumerate(kinds):
        k = first_k + j
        if kind == "html":
            page = gen.html_page(lang, k)
        elif kind == "404":
            page = gen.not_found_page(k)
        elif kind == "301":
            page = gen.redirect_page(k)
        else:
            page = gen.jpeg(k)
        date = _date(seed, t0 + 1 + 3 * j)
        parts = urlsplit(page.url)
        path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        ip = "10.%d.%d.%d" % tuple(hashlib.sha1(parts.netloc.encode()).digest()[:3])
        resp_id, req_id, meta_id = warc.record_id(), warc.record_id(), warc.record_id()

        req_http = StatusAndHeaders("GET %s HTTP/1.1" % path, [
            ("Host", parts.netloc), ("User-Agent", _USER_AGENT),
            ("Accept-Encoding", "br,gzip")],
            is_http_request=True)
        # (CC also writes WARC-Warcinfo-ID and WARC-IP-Address on requests: left out for size)
        rec = builder.create_warc_record(page.url, "request", http_headers=req_http, warc_headers_dict={
            "WARC-Type": "request", "WARC-Date": date, "WARC-Record-ID": req_id})
        warc.write(rec)

        reason = {200: "OK", 301: "Moved Permanently", 404: "Not Found"}[page.status]
        resp_http = StatusAndHeaders("%d %s" % (page.status, reason), [
            ("Date", _http_date(date)), ("Server", "nginx"), ("Content-Type", page.content_type),
            ("Content-Length", str(len(page.body)))] + page.extra_headers, protocol="HTTP/1.1")
        ident = page.content_type.split(";")[0]
        rec = builder.create_warc_record(
            page.url, "response", payload=io.BytesIO(page.body), length=len(page.body),
            http_headers=resp_http, warc_headers_dict={
                "WARC-Type": "response", "WARC-Date": date, "WARC-Record-ID": resp_id,
                "WARC-Warcinfo-ID": info_id, "WARC-Concurrent-To": req_id, "WARC-IP-Address": ip,
                "WARC-Identified-Payload-Type": ident})
        warc.write(rec, page=page)

        meta_fields = [("fetchTimeMs", str(40 + rng.randrange(900)))]
        if page.is_html:
            meta_fields.append(("charset-detected", page.charset.upper()))
            if page.status == 200:
                meta_fields.append(("languages-cld2", _cld2(page)))
        payload = _warc_fields(meta_fields)
        rec = builder.create_warc_record(
            page.url, "metadata", payload=io.BytesIO(payload), length=len(payload),
            warc_headers_dict={"WARC-Type": "metadata", "WARC-Date": date, "WARC-Record-ID": meta_id,
                               "WARC-Concurrent-To": resp_id})
        warc.write(rec, fields=meta_fields)

        ct = page.content_type.split(";")[0]
        stats["content_types"][ct] = stats["content_types"].get(ct, 0) + 1
        stats["statuses"][str(page.status)] = stats["statuses"].get(str(page.status), 0) + 1
        if page.is_html:
            stats["html_pages"] += 1
            stats["truth_pairs"] += len(page.pairs)
            stats["img_tags"] += page.n_img
            stats["languages"][page.lang] = stats["languages"].get(page.lang, 0) + 1
            stats["charsets"][page.charset] = stats["charsets"].get(page.charset, 0) + 1
            truth_lines.append(json.dumps({
                "page_url": page.url, "warc_record_id": resp_id, "status": page.status,
                "lang": page.lang, "charset": page.charset, "base_href": page.base_href,
                "pairs": page.pairs}, ensure_ascii=False, separators=(",", ":")))

    # WAT: warcinfo, then one metadata record per WARC record
    wat = _ArchiveOut(wat_name, seed, file_index, "wat")
    wat_date = _date(seed, t0 + 86400)
    wat_info = [("Software-Info", "%s/%d" % (GENERATOR, GENERATOR_VERSION)),
                ("Extracted-Date", _http_date(wat_date)),
                ("ip", "10.0.0.1"), ("hostname", "synth.example.org"),
                ("format", "WARC File Format 1.0"),
                ("conformsTo", "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.0/")]
    payload = _warc_fields(wat_info)
    wat_info_id = wat.record_id()
    rec = builder.create_warc_record(
        "", "warcinfo", payload=io.BytesIO(payload), length=len(payload),
        warc_headers_dict={"WARC-Type": "warcinfo", "WARC-Date": wat_date,
                           "WARC-Record-ID": wat_info_id, "WARC-Filename": wat_name})
    wat.write(rec)
    for e in warc.entries:
        r = e["record"]
        body = json.dumps(_wat_envelope(warc_name, e), ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")
        target = r.rec_headers.get_header("WARC-Target-URI") or warc_name
        rec = builder.create_warc_record(
            target, "metadata", payload=io.BytesIO(body), length=len(body),
            warc_content_type="application/json",
            warc_headers_dict={"WARC-Type": "metadata", "WARC-Target-URI": target,
                               "WARC-Date": wat_date, "WARC-Record-ID": wat.record_id(),
                               "WARC-Refers-To": r.rec_headers.get_header("WARC-Record-ID"),
                               "Content-Type": "application/json"})
        wat.write(rec)

    truth = "".join(line + "\n" for line in truth_lines).encode("utf-8")
    comp = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS + 16)
    truth_gz = comp.compress(truth) + comp.flush()

    files = {}
    for name, data in ((warc_name, warc.buf.getvalue()), (wat_name, wat.buf.getvalue()),
                       (truth_name, truth_gz)):
        with open(os.path.join(out_dir, name), "wb") as fh:
            fh.write(data)
        files[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    records: dict = {}
    for e in warc.entries:
        records[e["record"].rec_type] = records.get(e["record"].rec_type, 0) + 1
    return {"index": file_index, "warc": warc_name, "wat": wat_name, "truth": truth_name,
            "pages": n, "files": files, "warc_records": records,
            "wat_records": len(wat.entries), **stats}


def _merge(into: dict, d: dict) -> None:
    for k, v in d.items():
        into[k] = into.get(k, 0) + v


def make_corpus(out_dir, pages: int, seed: int, files: int = 1) -> dict:
    """Write ``files`` WARC/WAT/truth triples holding ``pages`` captures in all to
    ``out_dir`` (created if needed), then ``MANIFEST.json``; returns the manifest."""
    if pages < 1 or files < 1 or files > pages:
        raise ValueError("need 1 <= files <= pages (got pages=%d, files=%d)" % (pages, files))
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    per, extra = divmod(pages, files)
    parts, k = [], 0
    for i in range(files):
        n = per + (1 if i < extra else 0)
        parts.append(_make_file(out_dir, seed, i, k, n))
        k += n
    manifest: dict = {"generator": GENERATOR, "generator_version": GENERATOR_VERSION,
                      "seed": seed, "pages": pages, "n_files": files,
                      "html_pages": 0, "truth_pairs": 0, "img_tags": 0, "languages": {},
                      "charsets": {}, "statuses": {}, "content_types": {}, "warc_records": {},
                      "wat_records": 0, "files": {}, "parts": []}
    for p in parts:
        for key in ("html_pages", "truth_pairs", "img_tags", "wat_records"):
            manifest[key] += p[key]
        for key in ("languages", "charsets", "statuses", "content_types", "warc_records"):
            _merge(manifest[key], p[key])
        manifest["files"].update(p["files"])
        manifest["parts"].append({key: p[key] for key in ("index", "warc", "wat", "truth", "pages",
                                                           "html_pages", "truth_pairs")})
    for key in ("languages", "charsets", "statuses", "content_types", "warc_records"):
        manifest[key] = dict(sorted(manifest[key].items()))
    with open(os.path.join(out_dir, "MANIFEST.json"), "w", encoding="utf-8", newline="\n") as fh:
        fh.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m metaclip_spark.synth", description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, required=True, help="captures in all (request+response+metadata)")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--files", type=int, default=1, help="number of WARC/WAT file pairs")
    args = ap.parse_args(argv)
    m = make_corpus(args.out, args.pages, args.seed, args.files)
    print("%s: %d captures, %d HTML pages, %d truth pairs, languages %s" % (
        args.out, m["pages"], m["html_pages"], m["truth_pairs"],
        ", ".join("%s=%d" % kv for kv in m["languages"].items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
