"""An independent reading of the HTML pages of a WARC for the extraction tests: warcio reads
the records, html.parser the <img> attributes (no selectolax, no project code)."""

import codecs
import re
from html.parser import HTMLParser

from warcio.archiveiterator import ArchiveIterator

HTML_TYPES = ("text/html", "application/xhtml+xml")


def _codec(label):
    try:
        return codecs.lookup(label.strip().lower()).name if label else None
    except LookupError:
        return None


def decode(payload, ctype):
    """The page's text: the HTTP charset, else a <meta> charset in the first 4 KB, else UTF-8."""
    m = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", ctype or "", re.I)
    codec = _codec(m.group(1)) if m else None
    if codec is None:
        m = re.search(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", payload[:4096], re.I)
        codec = _codec(m.group(1).decode("ascii", "replace")) if m else None
    return payload.decode(codec or "utf-8", "replace")


class ImgAttrs(HTMLParser):
    """``imgs``: ``(src, value of each of fields)`` per <img> (None: absent, "" valueless; the first
    of a repeated attribute), ``base``: the first <base href> (None if none)."""

    def __init__(self, fields=("alt",)):
        super().__init__(convert_charrefs=True)
        self.fields, self.imgs, self.base = fields, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            seen = {}
            for k, v in attrs:
                seen.setdefault(k, "" if v is None else v)
            self.imgs.append((seen.get("src"),) + tuple(seen.get(f) for f in self.fields))
        elif tag == "base" and self.base is None:
            self.base = next(("" if v is None else v for k, v in attrs if k == "href"), None)

    handle_startendtag = handle_starttag


def html_pages(path, fields=("alt",)):
    """``(record id, page url, base href or None, imgs)`` of every HTML response of ``path``."""
    with open(path, "rb") as fh:
        for rec in ArchiveIterator(fh):
            ctype = rec.http_headers.get_header("Content-Type") if rec.http_headers else None
            if rec.rec_type != "response" or (ctype or "").split(";")[0].strip().lower() not in HTML_TYPES:
                continue
            p = ImgAttrs(fields)
            p.feed(decode(rec.content_stream().read(), ctype))
            p.close()
            yield (rec.rec_headers.get_header("WARC-Record-ID"), rec.rec_headers.get_header("WARC-Target-URI"),
                   p.base, p.imgs)
