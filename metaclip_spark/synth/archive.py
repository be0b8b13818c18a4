"""Writing WARC, WAT and truth files for a set of generated pages."""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import random
import uuid
import zlib
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from metaclip_spark.synth.archive_consts import GENERATOR, GENERATOR_VERSION, _EPOCH, _NAMESPACE, _USER_AGENT
from metaclip_spark.synth.generator import _Gen, _schedule
from metaclip_spark.synth.page import Page


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


