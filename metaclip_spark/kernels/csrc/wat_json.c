/* wat_scan(body): one pass over a WAT JSON body -> the same result as
 * metaclip_spark.formats.wat.wat_images_py (orjson.loads + the Links walk), or NotImplemented.
 *
 * It validates the whole body as JSON (RFC 8259, at least as strictly as orjson)
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
 * tests/kernels/test_native_wat.py holds both paths equal on real WATs, the generated corpus and fuzzed bodies.
 */
#include "speedups.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_DEPTH 256
#define FALLBACK (-1)
#define PYERR (-2)

enum { R_NONE, R_TOP, R_ENV, R_WHM, R_PM, R_HRM, R_HTML, R_HEAD, R_LINK, R_LINKS };
enum { K_STR = 1, K_OTHER = 2, K_OBJ = 3 };

typedef struct { const unsigned char *s, *e; int esc, wide; } Span;   /* wide: bytes >= 0x80 */

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
    while (p < end && *p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
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
    sp->wide = 0;
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
            sp->wide = 1;
            int n = utf8_len(p, end);
            if (!n)
                return FALLBACK;
            p += n;
        }
    }
}

static PyObject *decode(const Span *sp) {
    if (!sp->esc) {
        Py_ssize_t n = sp->e - sp->s;
        if (!sp->wide) {                        /* ASCII, checked by the scan: no decoding */
            PyObject *str = PyUnicode_New(n, 127);
            if (str)
                memcpy(PyUnicode_1BYTE_DATA(str), sp->s, (size_t)n);
            return str;
        }
        return PyUnicode_DecodeUTF8((const char *)sp->s, n, "strict");
    }
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

PyObject *wat_scan(PyObject *self, PyObject *arg) {
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

int wat_json_init(void) {
    for (int c = 0; c < 256; c++)
        SPECIAL[c] = (unsigned char)(c == '"' || c == '\\' || c < 0x20 || c >= 0x80);
    return 0;
}
