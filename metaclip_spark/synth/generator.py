"""Page generator: templates, edge cases and the capture schedule."""

from __future__ import annotations

import random
from urllib.parse import urljoin, urlsplit


from metaclip_spark.synth.page import Attr, Img, Page, PageBuilder, _qattr, _text, spec_pairs
from metaclip_spark.synth.vocab import BRANDS, CDN_HOSTS, CITIES, COLORS, EN_HOSTS, EN_NAV, EN_PARAGRAPHS, FOREIGN, NOUNS, PRODUCTS, _cap, english_alt, foreign_alt


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


