#include "speedups.h"

/* page_pairs(images, make_base, max_text, max_url, keep_dropped, counts): pairs.page_pairs_py's
 * rules over one page -> the candidates, the counts added to the PageCounts counts, or
 * NotImplemented (before any work) unless images is a list of (str, str | None) tuples.
 * make_base() builds the page's BaseURL on first need, as the Python code does. Text
 * normalisation and src.strip() run the same str methods (skipped when they would return
 * their input); URL resolution takes BaseURL.join's own shortcuts for ASCII sources
 * (root-relative, absolute http(s), protocol-relative, plain relative path, another scheme)
 * and calls base.join(src) for everything else (dot segments, odd bases, non-ASCII ...). */
enum { C_IMAGES, C_WITH_ALT, C_PAIRS, C_NO_ALT, C_EMPTY_ALT, C_EMPTY_SRC, C_NON_HTTP, C_INVALID,
       C_TEXT_LONG, C_URL_LONG, C_DUPLICATE, C_N };
/* PageCounts.__slots__, in the order above; a dropped candidate's reason is its counter's name */
static const char *COUNT_NAMES[C_N] = {"images", "images_with_alt", "pairs", "no_alt", "empty_alt", "empty_src",
                                       "non_http_url", "invalid_url", "text_too_long", "url_too_long",
                                       "duplicate_in_page"};
static PyObject *COUNT_STR[C_N], *SPACE, *STR_STRIP, *STR_JOIN, *STR_PREFIX, *STR_SCHEME, *STR_BASE_DIR;

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
/* 1: the character makes a source unsafe; 2: only when followed by '.' ('/') or '#' ('?') */
static unsigned char UNSAFE[256];

static int unsafe(const char *s, Py_ssize_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char f = UNSAFE[u[i]];
        if (f && (f == 1 || (i + 1 < n && u[i + 1] == (u[i] == '/' ? '.' : '#'))))
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

/* BaseURL.join's shortcuts for an ASCII src, else base.join(src); NULL + error set when
 * join raises */
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

PyObject *page_pairs(PyObject *self, PyObject *args) {
    PyObject *images, *make_base, *counter;
    Py_ssize_t max_text, max_url;
    int keep_dropped;
    if (!PyArg_ParseTuple(args, "OOnnpO", &images, &make_base, &max_text, &max_url, &keep_dropped, &counter))
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
                PyObject *mod = PyImport_ImportModule("metaclip_spark.formats.pairs");
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
                key = PyTuple_Pack(2, url, text);        /* added now: one hash, not two */
                Py_ssize_t before = PySet_GET_SIZE(seen);
                int has = key && PySet_Add(seen, key) == 0 ? PySet_GET_SIZE(seen) == before : -1;
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
            int bad = !cand || PyList_Append(out, cand) < 0;
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
            PyObject *cand = (u && x) ? PyTuple_Pack(3, u, x, COUNT_STR[drop]) : NULL;
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
    for (int k = 0; k < C_N; k++) {                 /* counter.<name> += n, for the non-zero ones */
        if (!counts[k])
            continue;
        PyObject *v = PyObject_GetAttr(counter, COUNT_STR[k]);
        PyObject *add = v ? PyLong_FromSsize_t(counts[k]) : NULL;
        PyObject *sum = add ? PyNumber_Add(v, add) : NULL;
        int bad = !sum || PyObject_SetAttr(counter, COUNT_STR[k], sum) < 0;
        Py_XDECREF(v);
        Py_XDECREF(add);
        Py_XDECREF(sum);
        if (bad)
            goto fail;
    }
    result = Py_NewRef(out);
fail:
    Py_XDECREF(out);
    Py_XDECREF(seen);
    Py_XDECREF(b.base);
    Py_XDECREF(b.prefix);
    Py_XDECREF(b.scheme);
    Py_XDECREF(b.dir);
    return result;
}

int page_rules_init(void) {
    for (int k = 0; k < C_N; k++)
        if (!(COUNT_STR[k] = PyUnicode_InternFromString(COUNT_NAMES[k])))
            return -1;
    for (const char *c = ";\n\t\r[]"; *c; c++)
        UNSAFE[(unsigned char)*c] = 1;
    UNSAFE['/'] = UNSAFE['?'] = 2;
    if (!(SPACE = PyUnicode_InternFromString(" ")) || !(STR_STRIP = PyUnicode_InternFromString("strip"))
        || !(STR_JOIN = PyUnicode_InternFromString("join")) || !(STR_PREFIX = PyUnicode_InternFromString("prefix"))
        || !(STR_SCHEME = PyUnicode_InternFromString("scheme"))
        || !(STR_BASE_DIR = PyUnicode_InternFromString("_base_dir")))
        return -1;
    return 0;
}
