/* metaclip_spark._watscan: one pass over a WAT JSON body -> the same result as
 * metaclip_spark.wat.wat_images_py (orjson.loads + the Links walk), or NotImplemented.
 *
 * scan(body) validates the whole body as JSON (RFC 8259, at least as strictly as orjson)
 * while it picks out, and only materialises as Python objects,
 *   Envelope.WARC-Header-Metadata.WARC-Target-URI,
 *   Envelope.Payload-Metadata.HTTP-Response-Metadata.HTML-Metadata.Head.Base and
 *   ...HTML-Metadata.Links[*] {path, url, alt} where path == "IMG@/src".
 * Returns (page_url | None, [(src, alt | None), ...], base | None), or None when the body is
 * valid JSON without an HTML-Metadata object, exactly as the Python path does.
 *
 * Whatever it cannot prove equal it hands back as NotImplemented, and the caller runs the
 * Python path (which also produces the error message for malformed JSON): any syntax error,
 * invalid UTF-8, a BOM, an escaped lone surrogate, a number with an exponent or longer than
 * 15 characters (orjson's double/int edge cases), nesting deeper than MAX_DEPTH, an escaped
 * key inside a tracked object, an escaped "path" value, or a tracked key given twice in one
 * object (Python keeps the last; links keep the last of path/url/alt here too).
 * tests/test_native_wat.py holds both paths equal on real WATs, the generated corpus and fuzzed bodies.
 */
#define _GNU_SOURCE                 /* memmem */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_DEPTH 256
#define FALLBACK (-1)
#define PYERR (-2)

enum { R_NONE, R_TOP, R_ENV, R_WHM, R_PM, R_HRM, R_HTML, R_HEAD, R_LINK, R_LINKS };
enum { K_STR = 1, K_OTHER = 2, K_OBJ = 3 };

typedef struct { const unsigned char *s, *e; int esc; } Span;

typedef struct {
    const unsigned char *p, *end;
    int depth;
    int uri_kind, base_kind, html_dict;
    Span uri, base;
    PyObject *images;
} Parser;

static unsigned char SPECIAL[256];   /* '"', '\\', < 0x20, >= 0x80 inside strings */

static inline void skip_ws(Parser *ps) {
    const unsigned char *p = ps->p, *end = ps->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

static inline int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const unsigned char *p, const unsigned char *end) {
    if (end - p < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        v = (v << 4) | h;
    }
    return v;
}

/* length of the strict UTF-8 sequence at p (2-4), 0 when invalid */
static int utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    Py_ssize_t left = end - p;
#define CONT(i) ((p[i] & 0xC0) == 0x80)
    if (c >= 0xC2 && c <= 0xDF)
        return (left >= 2 && CONT(1)) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || !CONT(1) || !CONT(2)) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0;          /* overlong */
        if (c == 0xED && p[1] > 0x9F) return 0;          /* surrogates */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || !CONT(1) || !CONT(2) || !CONT(3)) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;          /* overlong */
        if (c == 0xF4 && p[1] > 0x8F) return 0;          /* > U+10FFFF */
        return 4;
    }
#undef CONT
    return 0;
}

/* at the opening quote; on success sp holds the content between the quotes */
static int parse_string(Parser *ps, Span *sp) {
    const unsigned char *p = ps->p + 1, *end = ps->end;
    sp->s = p;
    sp->esc = 0;
    for (;;) {
#if defined(__SSE2__)
        const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), lo = _mm_set1_epi8(0x20);
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs)),
                                     _mm_cmplt_epi8(v, lo));   /* signed: also catches >= 0x80 */
            int mask = _mm_movemask_epi8(m);
            if (mask) {
                p += __builtin_ctz((unsigned)mask);
                break;
            }
            p += 16;
        }
#endif
        while (p < end && !SPECIAL[*p])
            p++;
        if (p >= end)
            return FALLBACK;
        unsigned char c = *p;
        if (c == '"') {
            sp->e = p;
            ps->p = p + 1;
            return 0;
        }
        if (c == '\\') {
            sp->esc = 1;
            if (p + 1 >= end)
                return FALLBACK;
            c = p[1];
            if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
                p += 2;
            } else if (c == 'u') {
                int v = hex4(p + 2, end);
                if (v < 0)
                    return FALLBACK;
                p += 6;
                if (v >= 0xD800 && v <= 0xDFFF) {           /* only well-formed pairs */
                    if (v >= 0xDC00 || end - p < 6 || p[0] != '\\' || p[1] != 'u')
                        return FALLBACK;
                    int w = hex4(p + 2, end);
                    if (w < 0xDC00 || w > 0xDFFF)
                        return FALLBACK;
                    p += 6;
                }
            } else {
                return FALLBACK;
            }
        } else if (c < 0x20) {
            return FALLBACK;
        } else {                                            /* >= 0x80 */
            int n = utf8_len(p, end);
            if (!n)
                return FALLBACK;
            p += n;
        }
    }
}

static PyObject *decode(const Span *sp) {
    if (!sp->esc)
        return PyUnicode_DecodeUTF8((const char *)sp->s, sp->e - sp->s, "strict");
    char *buf = PyMem_Malloc((size_t)(sp->e - sp->s) + 1);
    if (!buf)
        return PyErr_NoMemory();
    char *o = buf;
    const unsigned char *p = sp->s, *end = sp->e;
    while (p < end) {
        unsigned char c = *p;
        if (c != '\\') {
            *o++ = (char)c;
            p++;
            continue;
        }
        c = p[1];
        p += 2;
        switch (c) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned v = (unsigned)hex4(p, end);
            p += 4;
            if (v >= 0xD800 && v <= 0xDBFF) {               /* the scan checked the pair */
                unsigned w = (unsigned)hex4(p + 2, end);
                p += 6;
                v = 0x10000 + ((v - 0xD800) << 10) + (w - 0xDC00);
            }
            if (v < 0x80) {
                *o++ = (char)v;
            } else if (v < 0x800) {
                *o++ = (char)(0xC0 | (v >> 6));
                *o++ = (char)(0x80 | (v & 0x3F));
            } else if (v < 0x10000) {
                *o++ = (char)(0xE0 | (v >> 12));
                *o++ = (char)(0x80 | ((v >> 6) & 0x3F));
                *o++ = (char)(0x80 | (v & 0x3F));
            } else {
                *o++ = (char)(0xF0 | (v >> 18));
                *o++ = (char)(0x80 | ((v >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((v >> 6) & 0x3F));
                *o++ = (char)(0x80 | (v & 0x3F));
            }
            break;
        }
        default: *o++ = (char)c; break;                    /* " \ / */
        }
    }
    PyObject *s = PyUnicode_DecodeUTF8(buf, o - buf, "strict");
    PyMem_Free(buf);
    return s;
}

static int parse_number(Parser *ps) {
    const unsigned char *p = ps->p, *start = p, *end = ps->end;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return FALLBACK;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return FALLBACK;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return FALLBACK;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E'))
        return FALLBACK;                                    /* orjson's infinity/underflow cases */
    if (p - start > 15)
        return FALLBACK;                                    /* orjson's int/double switch */
    ps->p = p;
    return 0;
}

static int literal(Parser *ps, const char *word, size_t n) {
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return FALLBACK;
    ps->p += n;
    return 0;
}

static int parse_value(Parser *ps, int role, int *kind, Span *sp);

static inline int key_is(const Span *k, const char *name, size_t n) {
    return (size_t)(k->e - k->s) == n && memcmp(k->s, name, n) == 0;
}
#define KEY(k, lit) key_is((k), lit, sizeof(lit) - 1)

/* the tracked key of an object of this role: (child role, bit) or bit 0 when untracked */
static int tracked(int role, const Span *k, int *child) {
    *child = R_NONE;
    switch (role) {
    case R_TOP:
        if (KEY(k, "Envelope")) { *child = R_ENV; return 1; }
        break;
    case R_ENV:
        if (KEY(k, "WARC-Header-Metadata")) { *child = R_WHM; return 1; }
        if (KEY(k, "Payload-Metadata")) { *child = R_PM; return 2; }
        break;
    case R_WHM:
        if (KEY(k, "WARC-Target-URI")) return 1;
        break;
    case R_PM:
        if (KEY(k, "HTTP-Response-Metadata")) { *child = R_HRM; return 1; }
        break;
    case R_HRM:
        if (KEY(k, "HTML-Metadata")) { *child = R_HTML; return 1; }
        break;
    case R_HTML:
        if (KEY(k, "Head")) { *child = R_HEAD; return 1; }
        if (KEY(k, "Links")) { *child = R_LINKS; return 2; }
        break;
    case R_HEAD:
        if (KEY(k, "Base")) return 1;
        break;
    case R_LINK:
        if (KEY(k, "path")) return 1;
        if (KEY(k, "url")) return 2;
        if (KEY(k, "alt")) return 4;
        break;
    }
    return 0;
}

static int parse_object(Parser *ps, int role) {
    int rc;
    unsigned seen = 0;
    int path_img = 0, url_kind = 0, alt_kind = 0;      /* R_LINK: the last of each key */
    Span url = {0}, alt = {0};
    if (++ps->depth > MAX_DEPTH)
        return FALLBACK;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        goto done;
    }
    for (;;) {
        Span key, val;
        int kind, child = R_NONE, bit = 0;
        if (ps->p >= ps->end || *ps->p != '"')
            return FALLBACK;
        if ((rc = parse_string(ps, &key)) != 0)
            return rc;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':')
            return FALLBACK;
        ps->p++;
        skip_ws(ps);
        if (role != R_NONE) {
            if (key.esc)
                return FALLBACK;                        /* an escaped key could spell a tracked one */
            bit = tracked(role, &key, &child);
            if (bit && role != R_LINK) {
                if (seen & (unsigned)bit)
                    return FALLBACK;                    /* a tracked key twice: let Python decide */
                seen |= (unsigned)bit;
            }
        }
        if ((rc = parse_value(ps, child, &kind, &val)) != 0)
            return rc;
        if (bit) {
            switch (role) {
            case R_WHM:
                ps->uri_kind = kind == K_STR ? K_STR : K_OTHER;
                ps->uri = val;
                break;
            case R_HEAD:
                ps->base_kind = kind == K_STR ? K_STR : K_OTHER;
                ps->base = val;
                break;
            case R_HRM:
                if (kind == K_OBJ)
                    ps->html_dict = 1;
                break;
            case R_LINK:
                if (bit == 1) {
                    if (kind == K_STR && val.esc)
                        return FALLBACK;
                    path_img = kind == K_STR && key_is(&val, "IMG@/src", 8);
                } else if (bit == 2) {
                    url_kind = kind == K_STR ? K_STR : K_OTHER;
                    url = val;
                } else {
                    alt_kind = kind == K_STR ? K_STR : K_OTHER;
                    alt = val;
                }
                break;
            }
        }
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            break;
        }
        return FALLBACK;
    }
done:
    ps->depth--;
    if (role == R_LINK && path_img && url_kind == K_STR) {
        PyObject *src = decode(&url), *a, *t;
        if (!src)
            return PYERR;
        if (alt_kind == K_STR) {
            a = decode(&alt);
            if (!a) {
                Py_DECREF(src);
                return PYERR;
            }
        } else {
            a = Py_NewRef(Py_None);
        }
        t = PyTuple_Pack(2, src, a);
        Py_DECREF(src);
        Py_DECREF(a);
        if (!t || PyList_Append(ps->images, t) < 0) {
            Py_XDECREF(t);
            return PYERR;
        }
        Py_DECREF(t);
    }
    return 0;
}

static int parse_array(Parser *ps, int role) {
    int rc, kind;
    Span val;
    int child = role == R_LINKS ? R_LINK : R_NONE;
    if (++ps->depth > MAX_DEPTH)
        return FALLBACK;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        ps->depth--;
        return 0;
    }
    for (;;) {
        if ((rc = parse_value(ps, child, &kind, &val)) != 0)
            return rc;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            break;
        }
        return FALLBACK;
    }
    ps->depth--;
    return 0;
}

static int parse_value(Parser *ps, int role, int *kind, Span *sp) {
    if (ps->p >= ps->end)
        return FALLBACK;
    switch (*ps->p) {
    case '"':
        *kind = K_STR;
        return parse_string(ps, sp);
    case '{':
        *kind = K_OBJ;
        return parse_object(ps, role == R_LINKS ? R_NONE : role);
    case '[':
        *kind = K_OTHER;
        return parse_array(ps, role == R_LINKS ? R_LINKS : R_NONE);
    case 't':
        *kind = K_OTHER;
        return literal(ps, "true", 4);
    case 'f':
        *kind = K_OTHER;
        return literal(ps, "false", 5);
    case 'n':
        *kind = K_OTHER;
        return literal(ps, "null", 4);
    default:
        *kind = K_OTHER;
        return parse_number(ps);
    }
}

static PyObject *wat_scan(PyObject *self, PyObject *arg) {
    Py_buffer view;
    Parser ps;
    int rc, kind;
    Span top;
    PyObject *result = NULL;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    memset(&ps, 0, sizeof ps);
    ps.p = (const unsigned char *)view.buf;
    ps.end = ps.p + view.len;
    ps.images = PyList_New(0);
    if (!ps.images)
        goto out;
    skip_ws(&ps);
    rc = parse_value(&ps, R_TOP, &kind, &top);
    if (rc == 0) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            rc = FALLBACK;
    }
    if (rc == PYERR)
        goto out;
    if (rc == FALLBACK) {
        result = Py_NewRef(Py_NotImplemented);
        goto out;
    }
    if (!ps.html_dict) {
        result = Py_NewRef(Py_None);
        goto out;
    }
    {
        PyObject *uri = ps.uri_kind == K_STR ? decode(&ps.uri) : Py_NewRef(Py_None);
        PyObject *base = ps.base_kind == K_STR ? decode(&ps.base) : Py_NewRef(Py_None);
        if (uri && base)
            result = PyTuple_Pack(3, uri, ps.images, base);
        Py_XDECREF(uri);
        Py_XDECREF(base);
    }
out:
    Py_XDECREF(ps.images);
    PyBuffer_Release(&view);
    return result;
}

/* warc_headers(raw): metaclip_spark.warc._parse_header for headers made only of printable
 * ASCII, TAB, CR and LF (every real WARC header): lines split at CRLF, CR or LF, the first
 * (the version line) skipped, "name: value" -> {name.strip().lower(): value.strip()}, the
 * first occurrence of a name kept, lines without ":" ignored. Any other byte (where
 * str.splitlines, str.strip or str.lower have Unicode rules) -> NotImplemented. */
static inline int hspace(unsigned char c) { return c == ' ' || c == '\t'; }

/* the headers dict of raw[0:len], Py_NotImplemented (new reference) when a byte needs the
 * Python rules, NULL on error */
static PyObject *parse_headers(const unsigned char *p, Py_ssize_t len) {
    const unsigned char *end = p + len;
    for (const unsigned char *q = p; q < end; q++) {
        unsigned char c = *q;
        if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c >= 0x7F)
            return Py_NewRef(Py_NotImplemented);
    }
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    int first = 1;
    while (p < end) {
        const unsigned char *line = p, *eol = p;
        while (eol < end && *eol != '\r' && *eol != '\n')
            eol++;
        p = eol;
        if (p < end)
            p += (*p == '\r' && p + 1 < end && p[1] == '\n') ? 2 : 1;
        if (first) {
            first = 0;
            continue;
        }
        const unsigned char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon)
            continue;
        const unsigned char *ns = line, *ne = colon, *vs = colon + 1, *ve = eol;
        while (ns < ne && hspace(*ns)) ns++;
        while (ne > ns && hspace(ne[-1])) ne--;
        while (vs < ve && hspace(*vs)) vs++;
        while (ve > vs && hspace(ve[-1])) ve--;
        char small[256];
        size_t n = (size_t)(ne - ns);
        char *lower = n <= sizeof small ? small : PyMem_Malloc(n);
        if (!lower) {
            Py_DECREF(d);
            return PyErr_NoMemory();
        }
        for (size_t i = 0; i < n; i++) {
            unsigned char c = ns[i];
            lower[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        PyObject *key = PyUnicode_DecodeASCII(lower, (Py_ssize_t)n, NULL);
        if (lower != small)
            PyMem_Free(lower);
        PyObject *val = key ? PyUnicode_DecodeASCII((const char *)vs, ve - vs, NULL) : NULL;
        PyObject *got = val ? PyDict_SetDefault(d, key, val) : NULL;
        Py_XDECREF(key);
        Py_XDECREF(val);
        if (!got) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

static PyObject *warc_headers(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *d = parse_headers(view.buf, view.len);
    PyBuffer_Release(&view);
    return d;
}

/* warc_member(buf): what warc._unit_records yields for a complete gzip member (its whole
 * inflated content in buf) that holds exactly one well-formed record: optional CR/LF, a
 * "WARC/" header ending in CRLF CRLF (no LF LF before it, within HEADER_MAX) that
 * warc_headers parses, a decimal Content-Length whose block lies inside buf, and nothing
 * but CR/LF after the block. Returns (headers, warc-type lower-cased, block start, block
 * end), else NotImplemented: the Python reader then handles the member (and reports any
 * damage) itself. */
#define HEADER_MAX (1 << 20)

/* warc_member's work on buf[0:n]: a new (headers, rtype, bstart, bend) tuple, a new
 * reference to NotImplemented, or NULL on error */
static PyObject *member_record(const unsigned char *buf, Py_ssize_t n) {
    PyObject *result = NULL, *headers = NULL;
    Py_ssize_t p = 0, i, bstart, bend;
    while (p < n && (buf[p] == '\r' || buf[p] == '\n'))
        p++;
    if (n - p < 5 || memcmp(buf + p, "WARC/", 5) != 0)
        goto defer;
    {
        Py_ssize_t lim = p + HEADER_MAX < n ? p + HEADER_MAX : n;
        const unsigned char *hit = NULL;
        for (const unsigned char *q = buf + p; q + 4 <= buf + lim; q++) {
            q = memchr(q, '\r', (size_t)(buf + lim - q));
            if (!q || q + 4 > buf + lim)
                break;
            if (q[1] == '\n' && q[2] == '\r' && q[3] == '\n') {
                hit = q;
                break;
            }
        }
        if (!hit)
            goto defer;
        i = hit - buf;
        for (Py_ssize_t k = p; k + 1 < i; k++)
            if (buf[k] == '\n' && buf[k + 1] == '\n')
                goto defer;                         /* LF LF first: the regex path */
    }
    headers = parse_headers(buf + p, i - p);
    if (!headers || headers == Py_NotImplemented)
        goto done;
    {
        PyObject *length = PyDict_GetItemString(headers, "content-length");   /* borrowed */
        if (!length)
            goto defer;
        Py_ssize_t ln = PyUnicode_GET_LENGTH(length);
        const char *digits = (const char *)PyUnicode_1BYTE_DATA(length);
        if (ln == 0 || ln > 15)
            goto defer;
        Py_ssize_t value = 0;
        for (Py_ssize_t k = 0; k < ln; k++) {
            if (digits[k] < '0' || digits[k] > '9')
                goto defer;
            value = value * 10 + (digits[k] - '0');
        }
        bstart = i + 4;
        bend = bstart + value;
        if (bend > n)
            goto defer;                             /* a lying Content-Length */
        for (Py_ssize_t k = bend; k < n; k++)
            if (buf[k] != '\r' && buf[k] != '\n')
                goto defer;                         /* more than one record, or junk */
    }
    {
        PyObject *type = PyDict_GetItemString(headers, "warc-type");
        PyObject *rtype = type ? PyObject_CallMethod(type, "lower", NULL) : PyUnicode_FromString("");
        if (!rtype)
            goto done;
        result = Py_BuildValue("(ONnn)", headers, rtype, bstart, bend);
    }
    goto done;
defer:
    result = Py_NewRef(Py_NotImplemented);
done:
    if (headers == Py_NotImplemented && !result)
        result = Py_NewRef(Py_NotImplemented);
    Py_XDECREF(headers);
    return result;
}

static PyObject *warc_member(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *r = member_record(view.buf, view.len);
    PyBuffer_Release(&view);
    return r;
}

/* gzip_records(data, pos, decompressobj, step, types) -> ([(offset in data, rtype, headers,
 * block | None), ...], new pos): warc.read_records' work for the run of gzip members at
 * data[pos:] that it would take in one piece, i.e. members that start with the gzip magic,
 * end (trailer checked by the decompressor) within `step` compressed bytes and within data,
 * and hold one record warc_member accepts. It stops before the first other member (or the
 * end of data), which the Python reader then takes, damage reports included. The member's
 * end is first guessed at the next gzip magic (so the decompressor gets no bytes beyond it
 * in the common case); block is None unless types is None or holds the record's type. */
static PyObject *gzip_records(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, step;
    PyObject *factory, *types, *items = NULL, *result = NULL;
    PyObject *s_decompress = NULL, *s_eof = NULL, *s_unused = NULL;
    if (!PyArg_ParseTuple(args, "y*nOnO", &view, &pos, &factory, &step, &types))
        return NULL;
    const unsigned char *data = view.buf;
    Py_ssize_t n = view.len;
    if (!(items = PyList_New(0)) || !(s_decompress = PyUnicode_InternFromString("decompress"))
        || !(s_eof = PyUnicode_InternFromString("eof")) || !(s_unused = PyUnicode_InternFromString("unused_data")))
        goto out;
    while (pos >= 0 && n - pos >= 18 && data[pos] == 0x1f && data[pos + 1] == 0x8b && data[pos + 2] == 0x08) {
        Py_ssize_t end = n;
        const unsigned char *q = data + pos + 10;
        while ((q = memchr(q, 0x1f, (size_t)(data + n - q))) != NULL) {
            if (q + 2 < data + n && q[1] == 0x8b && q[2] == 0x08) {
                end = q - data;
                break;
            }
            q++;
        }
        if (end - pos > step)
            break;                                   /* maybe larger than one read: Python */
        PyObject *d = PyObject_CallFunction(factory, "i", 31);
        if (!d)
            goto out;
        PyObject *chunk = PyMemoryView_FromMemory((char *)data + pos, end - pos, PyBUF_READ);
        PyObject *inflated = chunk ? PyObject_CallMethodOneArg(d, s_decompress, chunk) : NULL;
        Py_XDECREF(chunk);
        if (!inflated) {                             /* corrupt: the Python reader reports it */
            Py_DECREF(d);
            if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_MemoryError))
                goto out;
            PyErr_Clear();
            break;
        }
        PyObject *eof = PyObject_GetAttr(d, s_eof);
        int is_eof = eof ? PyObject_IsTrue(eof) : -1;
        Py_XDECREF(eof);
        PyObject *unused = is_eof == 1 ? PyObject_GetAttr(d, s_unused) : NULL;
        Py_DECREF(d);
        if (is_eof < 0 || (is_eof == 1 && !unused)) {
            Py_DECREF(inflated);
            goto out;
        }
        if (!is_eof || !PyBytes_Check(inflated)) {   /* not complete here (or a false magic) */
            Py_XDECREF(unused);
            Py_DECREF(inflated);
            break;
        }
        Py_ssize_t member_end = end - PyBytes_GET_SIZE(unused);
        Py_DECREF(unused);
        const unsigned char *ib = (const unsigned char *)PyBytes_AS_STRING(inflated);
        PyObject *rec = member_record(ib, PyBytes_GET_SIZE(inflated));
        if (!rec) {
            Py_DECREF(inflated);
            goto out;
        }
        if (rec == Py_NotImplemented) {
            Py_DECREF(rec);
            Py_DECREF(inflated);
            break;
        }
        PyObject *headers = PyTuple_GET_ITEM(rec, 0), *rtype = PyTuple_GET_ITEM(rec, 1);
        Py_ssize_t bstart = PyLong_AsSsize_t(PyTuple_GET_ITEM(rec, 2)), bend = PyLong_AsSsize_t(PyTuple_GET_ITEM(rec, 3));
        int want = types == Py_None ? 1 : PySequence_Contains(types, rtype);
        PyObject *block = want == 1 ? PyBytes_FromStringAndSize((const char *)ib + bstart, bend - bstart)
                                    : want == 0 ? Py_NewRef(Py_None) : NULL;
        PyObject *item = block ? Py_BuildValue("(nOON)", pos, rtype, headers, block) : NULL;
        Py_DECREF(rec);
        Py_DECREF(inflated);
        if (!item || PyList_Append(items, item) < 0) {
            Py_XDECREF(item);
            goto out;
        }
        Py_DECREF(item);
        pos = member_end;
    }
    result = Py_BuildValue("(On)", items, pos);
out:
    Py_XDECREF(items);
    Py_XDECREF(s_decompress);
    Py_XDECREF(s_eof);
    Py_XDECREF(s_unused);
    PyBuffer_Release(&view);
    return result;
}

/* page_pairs(images, make_base, max_text, max_url, keep_dropped): pairs.page_pairs_py's rules
 * over one page -> (candidates, counts) with counts in PageCounts.__slots__ order, or
 * NotImplemented (before any work) unless images is a list of (str, str | None) tuples.
 * make_base() builds the page's BaseURL on first need, as the Python code does. Text
 * normalisation and src.strip() run the same str methods (skipped when they would return
 * their input); URL resolution takes BaseURL.join's own first four shortcuts for ASCII
 * sources (root-relative, absolute http(s), protocol-relative, plain relative path) and
 * calls base.join(src) for everything else. */
enum { C_IMAGES, C_WITH_ALT, C_PAIRS, C_NO_ALT, C_EMPTY_ALT, C_EMPTY_SRC, C_NON_HTTP, C_INVALID,
       C_TEXT_LONG, C_URL_LONG, C_DUPLICATE, C_N };
static const char *DROP_NAMES[C_N] = {NULL, NULL, NULL, NULL, NULL, NULL, "non_http_url", "invalid_url",
                                      "text_too_long", "url_too_long", "duplicate_in_page"};
static PyObject *DROP_STR[C_N], *SPACE, *STR_STRIP, *STR_JOIN, *STR_PREFIX, *STR_SCHEME, *STR_BASE_DIR;

static PyObject *normalize_text(PyObject *alt) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(alt);
    int kind = PyUnicode_KIND(alt);
    const void *data = PyUnicode_DATA(alt);
    int prev_ws = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (Py_UNICODE_ISSPACE(ch)) {
            if (ch != ' ' || prev_ws)
                goto general;
            prev_ws = 1;
        } else {
            prev_ws = 0;
        }
    }
    if (!prev_ws || n == 0)
        return Py_NewRef(alt);                     /* " ".join(alt.split()) == alt */
general:;
    PyObject *parts = PyUnicode_Split(alt, NULL, -1);
    if (!parts)
        return NULL;
    PyObject *text = PyUnicode_Join(SPACE, parts);
    Py_DECREF(parts);
    return text;
}

static PyObject *strip(PyObject *src) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(src);
    if (n == 0 || (!Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(src, 0)) &&
                   !Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(src, n - 1))))
        return Py_NewRef(src);
    return PyObject_CallMethodNoArgs(src, STR_STRIP);
}

/* pairs._unsafe */
static int unsafe(const char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ';' || c == '\n' || c == '\t' || c == '\r' || c == '[' || c == ']')
            return 1;
        if (c == '/' && i + 1 < n && s[i + 1] == '.')
            return 1;
        if (c == '?' && i + 1 < n && s[i + 1] == '#')
            return 1;
    }
    return n > 0 && (s[n - 1] == '?' || s[n - 1] == '#');
}

/* pairs._NETLOC.match(s, i): [\x21\x22\x24-\x2e\x30-\x3e\x40-\x7e]+ then [/?#] or the end */
static int netloc_at(const char *s, Py_ssize_t n, Py_ssize_t i) {
    Py_ssize_t start = i;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '/' || c == '?' || c == '#')
            break;
        if (!(c == 0x21 || c == 0x22 || (c >= 0x24 && c <= 0x2e) || (c >= 0x30 && c <= 0x3e) || (c >= 0x40 && c <= 0x7e)))
            return 0;
    }
    return i > start;
}

static PyObject *concat(PyObject *a, PyObject *b) { return PyUnicode_Concat(a, b); }

static int has_2slash(const char *s, Py_ssize_t n) {     /* "//" in s (NUL bytes included) */
    for (Py_ssize_t i = 0; i + 1 < n; i++)
        if (s[i] == '/' && s[i + 1] == '/')
            return 1;
    return 0;
}

typedef struct {
    PyObject *base, *prefix, *scheme, *dir;        /* prefix: str or None */
} Base;

/* BaseURL.join's first four shortcuts for an ASCII src, else base.join(src); NULL + error set
 * when join raises */
static PyObject *join(Base *b, PyObject *src) {
    if (PyUnicode_IS_ASCII(src) && b->prefix != Py_None) {
        const char *s = (const char *)PyUnicode_1BYTE_DATA(src);
        Py_ssize_t n = PyUnicode_GET_LENGTH(src);
        int have_prefix = PyUnicode_GET_LENGTH(b->prefix) > 0;
        char c = s[0];
        if (c == '/') {
            if (n < 2 || s[1] != '/') {
                if (have_prefix && !unsafe(s, n))
                    return concat(b->prefix, src);                           /* root-relative */
            } else if (have_prefix && netloc_at(s, n, 2) && !unsafe(s, n)) {
                PyObject *colon = PyUnicode_FromFormat("%U:", b->scheme);     /* protocol-relative */
                if (!colon)
                    return NULL;
                PyObject *url = concat(colon, src);
                Py_DECREF(colon);
                return url;
            }
        } else if (c == 'h') {
            Py_ssize_t k = (n >= 7 && memcmp(s, "http://", 7) == 0) ? 7 : (n >= 8 && memcmp(s, "https://", 8) == 0) ? 8 : 0;
            if (k && netloc_at(s, n, k) && !unsafe(s, n))
                return Py_NewRef(src);                                       /* absolute http(s) */
            if (have_prefix && !memchr(s, ':', (size_t)n) && !has_2slash(s, n) && !unsafe(s, n))
                goto relative;
        } else if (have_prefix && (unsigned char)c > ' ' && c != '?' && c != '#' && c != '.' && c != ':'
                   && !memchr(s, ':', (size_t)n) && !has_2slash(s, n) && !unsafe(s, n)) {
relative:
            if (!b->dir) {
                b->dir = PyObject_CallMethodNoArgs(b->base, STR_BASE_DIR);
                if (!b->dir)
                    return NULL;
            }
            return concat(b->dir, src);                                      /* relative path */
        }
        if (have_prefix && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            /* another scheme (data:, javascript: ...), returned as is: _SCHEME matches, the
             * scheme is not http(s), no "//" after the colon, no TAB/CR/LF */
            Py_ssize_t k = 1;
            while (k < n && ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') || (s[k] >= '0' && s[k] <= '9')
                             || s[k] == '+' || s[k] == '.' || s[k] == '-'))
                k++;
            int slashes = n >= k + 3 && s[k + 1] == '/' && s[k + 2] == '/';
            if (k < n && s[k] == ':' && !slashes) {
                int http = (k == 4 && strncasecmp(s, "http", 4) == 0) || (k == 5 && strncasecmp(s, "https", 5) == 0);
                if (!http && !memchr(s, '\n', (size_t)n) && !memchr(s, '\t', (size_t)n) && !memchr(s, '\r', (size_t)n))
                    return Py_NewRef(src);
            }
        }
    }
    return PyObject_CallMethodOneArg(b->base, STR_JOIN, src);
}

/* pairs.is_http_url */
static int is_http(PyObject *url) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(url), i;
    Py_ssize_t lim = n < 6 ? n : 6;
    for (i = 0; i < lim; i++)
        if (PyUnicode_READ_CHAR(url, i) == ':')
            break;
    if (i == 0 || i >= lim || i >= 6)
        return 0;
    char low[6];
    for (Py_ssize_t j = 0; j < i; j++) {
        Py_UCS4 ch = PyUnicode_READ_CHAR(url, j);
        if (ch >= 0x80)
            return -1;                                  /* str.lower's Unicode rules: ask Python */
        low[j] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    return (i == 4 && memcmp(low, "http", 4) == 0) || (i == 5 && memcmp(low, "https", 5) == 0);
}

static PyObject *page_pairs(PyObject *self, PyObject *args) {
    PyObject *images, *make_base;
    Py_ssize_t max_text, max_url;
    int keep_dropped;
    if (!PyArg_ParseTuple(args, "OOnnp", &images, &make_base, &max_text, &max_url, &keep_dropped))
        return NULL;
    if (!PyList_CheckExact(images) || max_text < 0 || max_url < 0)
        Py_RETURN_NOTIMPLEMENTED;
    Py_ssize_t n = PyList_GET_SIZE(images);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(images, i);
        if (!PyTuple_CheckExact(t) || PyTuple_GET_SIZE(t) != 2 || !PyUnicode_CheckExact(PyTuple_GET_ITEM(t, 0)))
            Py_RETURN_NOTIMPLEMENTED;
        PyObject *alt = PyTuple_GET_ITEM(t, 1);
        if (alt != Py_None && !PyUnicode_CheckExact(alt))
            Py_RETURN_NOTIMPLEMENTED;
    }
    Py_ssize_t counts[C_N] = {0};
    Base b = {NULL, NULL, NULL, NULL};
    PyObject *out = PyList_New(0), *seen = PySet_New(NULL), *result = NULL;
    if (!out || !seen)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(images, i);
        PyObject *src0 = PyTuple_GET_ITEM(t, 0), *alt = PyTuple_GET_ITEM(t, 1);
        PyObject *text = NULL, *src = NULL, *url = NULL, *key = NULL;
        int drop = -1;
        counts[C_IMAGES]++;
        if (alt == Py_None) {
            counts[C_NO_ALT]++;
            continue;
        }
        counts[C_WITH_ALT]++;
        if (!(text = normalize_text(alt)))
            goto fail;
        if (PyUnicode_GET_LENGTH(text) == 0) {
            counts[C_EMPTY_ALT]++;
            Py_DECREF(text);
            continue;
        }
        if (!(src = strip(src0))) {
            Py_DECREF(text);
            goto fail;
        }
        if (PyUnicode_GET_LENGTH(src) == 0) {
            counts[C_EMPTY_SRC]++;
            Py_DECREF(text);
            Py_DECREF(src);
            continue;
        }
        if (!b.base) {
            b.base = PyObject_CallNoArgs(make_base);
            if (b.base)
                b.prefix = PyObject_GetAttr(b.base, STR_PREFIX);
            if (b.prefix)
                b.scheme = PyObject_GetAttr(b.base, STR_SCHEME);
            if (!b.scheme || (b.prefix != Py_None && !PyUnicode_CheckExact(b.prefix))
                || (b.scheme != Py_None && !PyUnicode_CheckExact(b.scheme))) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "BaseURL.prefix/scheme must be str or None");
                Py_DECREF(text);
                Py_DECREF(src);
                goto fail;
            }
        }
        url = join(&b, src);
        if (!url) {
            if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
                Py_DECREF(text);
                Py_DECREF(src);
                goto fail;
            }
            PyErr_Clear();
            url = Py_NewRef(src);
            drop = C_INVALID;
        } else {
            int http = is_http(url);
            if (http < 0) {                                   /* the Python test */
                PyObject *mod = PyImport_ImportModule("metaclip_spark.pairs");
                PyObject *r = mod ? PyObject_CallMethod(mod, "is_http_url", "O", url) : NULL;
                Py_XDECREF(mod);
                http = r ? PyObject_IsTrue(r) : -1;
                Py_XDECREF(r);
                if (http < 0) {
                    Py_DECREF(text);
                    Py_DECREF(src);
                    Py_DECREF(url);
                    goto fail;
                }
            }
            if (!http)
                drop = C_NON_HTTP;
            else if (PyUnicode_GET_LENGTH(text) > max_text)
                drop = C_TEXT_LONG;
            else if (PyUnicode_GET_LENGTH(url) > max_url)
                drop = C_URL_LONG;
            else {
                key = PyTuple_Pack(2, url, text);
                int has = key ? PySet_Contains(seen, key) : -1;
                if (has < 0) {
                    Py_XDECREF(key);
                    Py_DECREF(text);
                    Py_DECREF(src);
                    Py_DECREF(url);
                    goto fail;
                }
                if (has)
                    drop = C_DUPLICATE;
            }
        }
        Py_DECREF(src);
        if (drop < 0) {
            PyObject *cand = PyTuple_Pack(3, url, text, Py_None);
            int bad = !cand || PySet_Add(seen, key) < 0 || PyList_Append(out, cand) < 0;
            Py_XDECREF(cand);
            Py_DECREF(key);
            Py_DECREF(url);
            Py_DECREF(text);
            if (bad)
                goto fail;
            continue;
        }
        Py_XDECREF(key);
        counts[drop]++;
        if (keep_dropped) {
            PyObject *u = PyUnicode_Substring(url, 0, max_url), *x = PyUnicode_Substring(text, 0, max_text);
            PyObject *cand = (u && x) ? PyTuple_Pack(3, u, x, DROP_STR[drop]) : NULL;
            int bad = !cand || PyList_Append(out, cand) < 0;
            Py_XDECREF(u);
            Py_XDECREF(x);
            Py_XDECREF(cand);
            if (bad) {
                Py_DECREF(url);
                Py_DECREF(text);
                goto fail;
            }
        }
        Py_DECREF(url);
        Py_DECREF(text);
    }
    counts[C_PAIRS] = PySet_GET_SIZE(seen);
    {
        PyObject *c = PyTuple_New(C_N);
        if (!c)
            goto fail;
        for (int k = 0; k < C_N; k++) {
            PyObject *v = PyLong_FromSsize_t(counts[k]);
            if (!v) {
                Py_DECREF(c);
                goto fail;
            }
            PyTuple_SET_ITEM(c, k, v);
        }
        result = PyTuple_Pack(2, out, c);
        Py_DECREF(c);
    }
fail:
    Py_XDECREF(out);
    Py_XDECREF(seen);
    Py_XDECREF(b.base);
    Py_XDECREF(b.prefix);
    Py_XDECREF(b.scheme);
    Py_XDECREF(b.dir);
    return result;
}

/* contains(haystack, needle) -> bool: `needle in haystack` for bytes-like objects, with
 * glibc's vectorised memmem (Python's bytes.__contains__ is a scalar search). */
static PyObject *contains(PyObject *self, PyObject *args) {
    Py_buffer hay, needle;
    if (!PyArg_ParseTuple(args, "y*y*", &hay, &needle))
        return NULL;
    int found = needle.len == 0 || memmem(hay.buf, (size_t)hay.len, needle.buf, (size_t)needle.len) != NULL;
    PyBuffer_Release(&hay);
    PyBuffer_Release(&needle);
    return PyBool_FromLong(found);
}

static PyMethodDef methods[] = {
    {"wat_scan", wat_scan, METH_O,
     "wat_scan(body) -> (page_url, [(src, alt), ...], base) | None | NotImplemented (use the Python path)"},
    {"warc_headers", warc_headers, METH_O,
     "warc_headers(raw) -> {lower-case name: value} | NotImplemented (use the Python path)"},
    {"warc_member", warc_member, METH_O,
     "warc_member(inflated member) -> (headers, warc-type, block start, block end) | NotImplemented"},
    {"gzip_records", gzip_records, METH_VARARGS,
     "gzip_records(data, pos, decompressobj, step, types) -> ([(offset, rtype, headers, block), ...], pos)"},
    {"contains", contains, METH_VARARGS, "contains(haystack, needle) -> needle in haystack (bytes)"},
    {"page_pairs", page_pairs, METH_VARARGS,
     "page_pairs(images, make_base, max_text, max_url, keep_dropped) -> (candidates, counts) | NotImplemented"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) {
    for (int c = 0; c < 256; c++)
        SPECIAL[c] = (unsigned char)(c == '"' || c == '\\' || c < 0x20 || c >= 0x80);
    for (int k = 0; k < C_N; k++)
        if (DROP_NAMES[k] && !(DROP_STR[k] = PyUnicode_InternFromString(DROP_NAMES[k])))
            return NULL;
    if (!(SPACE = PyUnicode_InternFromString(" ")) || !(STR_STRIP = PyUnicode_InternFromString("strip"))
        || !(STR_JOIN = PyUnicode_InternFromString("join")) || !(STR_PREFIX = PyUnicode_InternFromString("prefix"))
        || !(STR_SCHEME = PyUnicode_InternFromString("scheme"))
        || !(STR_BASE_DIR = PyUnicode_InternFromString("_base_dir")))
        return NULL;
    return PyModule_Create(&module);
}
