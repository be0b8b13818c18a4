/* The HTML nesting pre-check's scan (htmlpairs.nesting_work_py) in one C pass. */
#include "speedups.h"

/* nesting_work(html, stop_above=None): htmlpairs.nesting_work_py on the same input, the same
 * int, or NotImplemented (before any work) for an input it does not take: html must be
 * exactly bytes or str (a str is scanned as str.encode("utf-8", "replace"), as Python does),
 * stop_above None, an exact int or a bool, and the page under 4 GiB (the work then fits in an
 * int64: it is at most tags x tags, and a tag takes two bytes).
 *
 * The tokens are those of htmlpairs._NEST_TOKENS.findall(html.lower()), found without the
 * lower-cased copy (names are compared ASCII-case-insensitively, as bytes.lower() only
 * changes A-Z): at each "<", in the regex's order of alternatives, a comment "<!--" up to the
 * first "-->" (or the end), a raw-text element "<script" + one of [ \t\n\r\f\v/>] up to the
 * first "</script" (or the end), else "<" "/"? [a-z][a-z0-9]* (a tag), else nothing at this
 * "<". Comments and raw text yield an empty token, which the Python loop skips.
 *
 * The loop is the Python one: stack = the open elements' name ids, where[name][-1] = top[id]
 * (each stack entry links to the previous open element of its name, so where's lists are
 * these chains), bounds/tables = the depths of the open scope boundaries / tables, on top of
 * a -1. Names are interned per call in a hash table seeded with the names the rules know. */

enum { F_VOID = 1, F_BOUNDARY = 2, F_TABLE_PART = 4, F_CLOSES_P = 8, F_HEADING = 16, F_SPECIAL = 32 };
#define V F_VOID
#define B F_BOUNDARY
#define T F_TABLE_PART
#define C F_CLOSES_P
#define H F_HEADING
#define S F_SPECIAL

/* the ids of the names the code refers to: the first entries of KNOWN, in this order */
enum { N_P, N_OL, N_UL, N_DL, N_OPTION, N_OPTGROUP, N_FORM, N_TABLE, N_LI, N_DD, N_DT, N_TD, N_TH, N_TR,
       N_TBODY, N_THEAD, N_TFOOT, N_A, N_NOBR };

/* htmlpairs._VOID, _BOUNDARY, _TABLE_PARTS, _CLOSES_P, _HEADINGS, _SPECIAL */
static const struct { const char *name; unsigned char flags; } KNOWN[] = {
    {"p", C|S}, {"ol", C|S}, {"ul", C|S}, {"dl", C|S}, {"option", S}, {"optgroup", S}, {"form", C|S},
    {"table", B|T|C|S}, {"li", C|S}, {"dd", C|S}, {"dt", C|S}, {"td", B|T|S}, {"th", B|T|S}, {"tr", T|S},
    {"tbody", T|S}, {"thead", T|S}, {"tfoot", T|S}, {"a", S}, {"nobr", S}, {"address", C|S},
    {"applet", B}, {"area", V}, {"article", C|S}, {"aside", C|S}, {"base", V}, {"basefont", V},
    {"bgsound", V}, {"blockquote", C|S}, {"body", V}, {"br", V}, {"button", B}, {"caption", B|T},
    {"center", C|S}, {"col", V}, {"details", C|S}, {"dialog", C|S}, {"dir", C|S}, {"div", C|S},
    {"embed", V}, {"fieldset", C|S}, {"figcaption", C|S}, {"figure", C|S}, {"footer", C|S}, {"frame", V},
    {"h1", C|H|S}, {"h2", C|H|S}, {"h3", C|H|S}, {"h4", C|H|S}, {"h5", C|H|S}, {"h6", C|H|S},
    {"head", V}, {"header", C|S}, {"hgroup", C|S}, {"hr", V}, {"html", V|B}, {"image", V}, {"img", V},
    {"input", V}, {"keygen", V}, {"link", V}, {"listing", C|S}, {"main", C|S}, {"marquee", B},
    {"menu", C|S}, {"menuitem", V}, {"meta", V}, {"nav", C|S}, {"object", B}, {"param", V},
    {"plaintext", C|S}, {"pre", C|S}, {"search", C|S}, {"section", C|S}, {"source", V}, {"summary", C|S},
    {"template", B}, {"track", V}, {"wbr", V}, {"xmp", C|S},
};
#undef V
#undef B
#undef T
#undef C
#undef H
#undef S
#define N_KNOWN ((Py_ssize_t)(sizeof(KNOWN) / sizeof(KNOWN[0])))

/* htmlpairs._IMPLIED: start tag -> (the open elements it closes, in order; scope kind) */
enum { SC_NONE, SC_DEFAULT, SC_LIST, SC_TABLE };
typedef struct { int scope, n, names[3]; } Implied;

static Implied implied_of(int id) {
    switch (id) {
    case N_LI: return (Implied){SC_LIST, 1, {N_LI}};
    case N_DD: case N_DT: return (Implied){SC_LIST, 2, {N_DD, N_DT}};
    case N_TD: case N_TH: return (Implied){SC_TABLE, 2, {N_TD, N_TH}};
    case N_TR: return (Implied){SC_TABLE, 1, {N_TR}};
    case N_TBODY: case N_THEAD: case N_TFOOT: return (Implied){SC_TABLE, 3, {N_TBODY, N_THEAD, N_TFOOT}};
    case N_A: return (Implied){SC_DEFAULT, 1, {N_A}};
    case N_NOBR: return (Implied){SC_DEFAULT, 1, {N_NOBR}};
    default: return (Implied){SC_NONE, 0, {0}};
    }
}

/* the raw-text alternatives of _NEST_TOKENS, in the regex's order */
static const struct { const char *name; size_t len; } RAW[] = {
    {"script", 6}, {"style", 5}, {"textarea", 8}, {"title", 5}, {"xmp", 3}, {"iframe", 6}, {"noembed", 7},
    {"noframes", 8}, {"svg", 3}, {"math", 4},
};

static inline unsigned char low(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }
static inline int alpha(unsigned char c) { c = low(c); return c >= 'a' && c <= 'z'; }
static inline int alnum(unsigned char c) { return alpha(c) || (c >= '0' && c <= '9'); }
/* [\s/>] of a bytes pattern: \s is [ \t\n\r\f\v] there */
static inline int raw_sep(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r') || c == '/' || c == '>'; }

/* s[0:n].lower() == lower (a lower-case name) */
static inline int eq_low(const unsigned char *s, const char *lower, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (low(s[i]) != (unsigned char)lower[i])
            return 0;
    return 1;
}

/* the first "</" + name (case-insensitive) in [p, end), or NULL */
static const unsigned char *find_close(const unsigned char *p, const unsigned char *end, const char *name,
                                       size_t len) {
    while (p < end && (p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        if ((size_t)(end - p) >= len + 2 && p[1] == '/' && eq_low(p + 2, name, len))
            return p;
        p++;
    }
    return NULL;
}

/* per-call state: interned names (id -> spelling, hash, flags, innermost open element) and
 * the stacks; every array grows on demand */
typedef struct {
    int32_t *slots;                     /* open addressing, id + 1 (0: empty) */
    size_t mask;
    const unsigned char **ptr;          /* the spelling: KNOWN's (lower case) or the page's */
    Py_ssize_t *len, *top;              /* top: stack index of the innermost open one, or -1 */
    uint64_t *hash;
    unsigned char *flags;
    Py_ssize_t count, cap;
    int32_t *sid;                       /* stack: name ids */
    Py_ssize_t *sprev;                  /* stack: the previous open element of the same name, or -1 */
    Py_ssize_t depth, scap;
    Py_ssize_t *bounds, nb, bcap;       /* bounds[0] = tables[0] = -1 */
    Py_ssize_t *tables, nt, tcap;
} Scan;

static void scan_free(Scan *s) {
    PyMem_Free(s->slots);
    PyMem_Free(s->ptr);
    PyMem_Free(s->len);
    PyMem_Free(s->top);
    PyMem_Free(s->hash);
    PyMem_Free(s->flags);
    PyMem_Free(s->sid);
    PyMem_Free(s->sprev);
    PyMem_Free(s->bounds);
    PyMem_Free(s->tables);
}

#define GROW(arr, newcap)                                                   \
    do {                                                                    \
        void *g_ = PyMem_Realloc((arr), sizeof(*(arr)) * (size_t)(newcap)); \
        if (!g_)                                                            \
            return -1;                                                      \
        (arr) = g_;                                                         \
    } while (0)

static inline uint64_t hash_low(const unsigned char *p, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL;               /* FNV-1a over the lower-cased bytes */
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ low(p[i])) * 1099511628211ULL;
    return h;
}

static int rehash(Scan *s, size_t size) {
    int32_t *slots = PyMem_Calloc(size, sizeof(int32_t));
    if (!slots)
        return -1;
    for (Py_ssize_t id = 0; id < s->count; id++) {
        size_t i = (size_t)s->hash[id] & (size - 1);
        while (slots[i])
            i = (i + 1) & (size - 1);
        slots[i] = (int32_t)(id + 1);
    }
    PyMem_Free(s->slots);
    s->slots = slots;
    s->mask = size - 1;
    return 0;
}

static int grow_names(Scan *s) {
    Py_ssize_t cap = s->cap * 2;
    GROW(s->ptr, cap);
    GROW(s->len, cap);
    GROW(s->top, cap);
    GROW(s->hash, cap);
    GROW(s->flags, cap);
    s->cap = cap;
    return 0;
}

/* the id of name p[0:n] (any case), added when insert is set; -1 when absent, -2 on error */
static Py_ssize_t intern(Scan *s, const unsigned char *p, Py_ssize_t n, int insert) {
    uint64_t h = hash_low(p, n);
    size_t i = (size_t)h & s->mask;
    for (int32_t slot; (slot = s->slots[i]) != 0; i = (i + 1) & s->mask) {
        Py_ssize_t id = slot - 1;
        if (s->hash[id] == h && s->len[id] == n) {
            const unsigned char *q = s->ptr[id];
            Py_ssize_t k = 0;
            while (k < n && low(q[k]) == low(p[k]))
                k++;
            if (k == n)
                return id;
        }
    }
    if (!insert)
        return -1;
    if (s->count >= INT32_MAX - 1 || (s->count == s->cap && grow_names(s) < 0)) {
        PyErr_NoMemory();
        return -2;
    }
    Py_ssize_t id = s->count++;
    s->ptr[id] = p;
    s->len[id] = n;
    s->top[id] = -1;
    s->hash[id] = h;
    s->flags[id] = 0;
    s->slots[i] = (int32_t)(id + 1);
    if ((size_t)s->count * 2 > s->mask + 1 && rehash(s, (s->mask + 1) * 2) < 0) {
        PyErr_NoMemory();
        return -2;
    }
    return id;
}

static int scan_init(Scan *s) {
    memset(s, 0, sizeof(*s));
    s->cap = 128;
    s->scap = s->bcap = s->tcap = 64;
    s->ptr = PyMem_Malloc(sizeof(*s->ptr) * (size_t)s->cap);
    s->len = PyMem_Malloc(sizeof(*s->len) * (size_t)s->cap);
    s->top = PyMem_Malloc(sizeof(*s->top) * (size_t)s->cap);
    s->hash = PyMem_Malloc(sizeof(*s->hash) * (size_t)s->cap);
    s->flags = PyMem_Malloc(sizeof(*s->flags) * (size_t)s->cap);
    s->sid = PyMem_Malloc(sizeof(*s->sid) * (size_t)s->scap);
    s->sprev = PyMem_Malloc(sizeof(*s->sprev) * (size_t)s->scap);
    s->bounds = PyMem_Malloc(sizeof(*s->bounds) * (size_t)s->bcap);
    s->tables = PyMem_Malloc(sizeof(*s->tables) * (size_t)s->tcap);
    if (!s->ptr || !s->len || !s->top || !s->hash || !s->flags || !s->sid || !s->sprev || !s->bounds || !s->tables
        || rehash(s, 256) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    s->bounds[0] = s->tables[0] = -1;
    s->nb = s->nt = 1;
    for (Py_ssize_t k = 0; k < N_KNOWN; k++) {
        Py_ssize_t id = intern(s, (const unsigned char *)KNOWN[k].name, (Py_ssize_t)strlen(KNOWN[k].name), 1);
        if (id < 0)
            return -1;
        s->flags[id] = KNOWN[k].flags;                 /* id == k: KNOWN's names are distinct */
    }
    return 0;
}

/* pop_to(i): close the open elements at stack indices >= i */
static inline void pop_to(Scan *s, Py_ssize_t i) {
    while (s->depth > i) {
        Py_ssize_t d = --s->depth;
        int32_t id = s->sid[d];
        s->top[id] = s->sprev[d];
        if (s->flags[id] & F_BOUNDARY) {
            s->nb--;
            if (id == N_TABLE)
                s->nt--;
        }
    }
}

static int push(Scan *s, Py_ssize_t id) {
    Py_ssize_t d = s->depth;
    if (d == s->scap) {
        Py_ssize_t cap = s->scap * 2;
        GROW(s->sid, cap);
        GROW(s->sprev, cap);
        s->scap = cap;
    }
    s->sid[d] = (int32_t)id;
    s->sprev[d] = s->top[id];
    s->top[id] = d;
    if (s->flags[id] & F_BOUNDARY) {
        if (s->nb == s->bcap) {
            GROW(s->bounds, s->bcap * 2);
            s->bcap *= 2;
        }
        s->bounds[s->nb++] = d;
        if (id == N_TABLE) {
            if (s->nt == s->tcap) {
                GROW(s->tables, s->tcap * 2);
                s->tcap *= 2;
            }
            s->tables[s->nt++] = d;
        }
    }
    s->depth = d + 1;
    return 0;
}

/* the scan of buf[0:n]: the work (>= 0), or -1 with an error set */
static long long scan(const unsigned char *buf, Py_ssize_t n, int has_stop, long long stop) {
    Scan st, *s = &st;
    long long work = 0;
    if (scan_init(s) < 0)
        goto error;
    const unsigned char *p = buf, *end = buf + n;
    while (p < end && (p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        const unsigned char *q = p + 1;
        if (end - q >= 3 && q[0] == '!' && q[1] == '-' && q[2] == '-') {            /* comment */
            const unsigned char *c = memmem(q + 3, (size_t)(end - q - 3), "-->", 3);
            p = c ? c + 3 : end;
            continue;
        }
        int raw = 0;
        for (size_t r = 0; r < sizeof(RAW) / sizeof(RAW[0]); r++) {                 /* raw text */
            size_t len = RAW[r].len;
            if ((size_t)(end - q) > len && eq_low(q, RAW[r].name, len) && raw_sep(q[len])) {
                const unsigned char *c = find_close(q + len + 1, end, RAW[r].name, len);
                p = c ? c + 2 + len : end;
                raw = 1;
                break;
            }
        }
        if (raw)
            continue;
        int closing = q < end && *q == '/';
        q += closing;
        if (q >= end || !alpha(*q)) {                                                  /* no token here */
            p++;
            continue;
        }
        const unsigned char *name = q;
        while (q < end && alnum(*q))
            q++;
        p = q;
        Py_ssize_t nlen = q - name;

        work += s->depth;
        if (closing) {
            Py_ssize_t id = intern(s, name, nlen, 0);
            if (id == -1)
                continue;                                            /* never opened: nothing */
            unsigned char f = s->flags[id];
            if (s->depth && s->sid[s->depth - 1] == id && !(f & F_BOUNDARY)) {         /* the common case */
                s->top[id] = s->sprev[--s->depth];
                continue;
            }
            Py_ssize_t at = s->top[id];
            if (at >= 0 && at >= ((f & F_TABLE_PART) ? s->tables[s->nt - 1] : s->bounds[s->nb - 1]))
                pop_to(s, at);
            continue;
        }
        Py_ssize_t id = intern(s, name, nlen, 1);
        if (id < 0)
            goto error;
        unsigned char f = s->flags[id];
        if (f & F_VOID)
            continue;
        if (has_stop && work > stop)
            goto done;
        if (f & F_SPECIAL) {
            if (f & F_CLOSES_P) {
                Py_ssize_t at = s->top[N_P];
                if (at >= 0 && at > s->bounds[s->nb - 1])
                    pop_to(s, at);
                if ((f & F_HEADING) && s->depth && (s->flags[s->sid[s->depth - 1]] & F_HEADING))
                    pop_to(s, s->depth - 1);
            }
            Implied imp = implied_of((int)id);
            if (imp.scope != SC_NONE) {
                Py_ssize_t floor = imp.scope == SC_TABLE ? s->tables[s->nt - 1] : s->bounds[s->nb - 1];
                if (imp.scope == SC_LIST) {
                    static const int LISTS[3] = {N_OL, N_UL, N_DL};
                    for (int k = 0; k < 3; k++)
                        if (s->top[LISTS[k]] > floor)
                            floor = s->top[LISTS[k]];
                }
                for (int k = 0; k < imp.n; k++) {
                    Py_ssize_t at = s->top[imp.names[k]];
                    if (at >= 0 && at > floor)
                        pop_to(s, at);
                }
            } else if (id == N_OPTION || id == N_OPTGROUP) {
                while (s->depth && (s->sid[s->depth - 1] == N_OPTION
                                    || (id == N_OPTGROUP && s->sid[s->depth - 1] == N_OPTGROUP)))
                    pop_to(s, s->depth - 1);
            } else if (id == N_FORM && s->top[N_FORM] >= 0) {
                continue;
            }
        }
        if (push(s, id) < 0) {
            PyErr_NoMemory();
            goto error;
        }
    }
done:
    scan_free(s);
    return work;
error:
    scan_free(s);
    return -1;
}

PyObject *nesting_work(PyObject *self, PyObject *args) {
    PyObject *html, *stop_obj = Py_None;
    if (!PyArg_ParseTuple(args, "O|O:nesting_work", &html, &stop_obj))
        return NULL;
    int has_stop = stop_obj != Py_None;
    long long stop = 0;
    if (has_stop) {
        if (!PyLong_CheckExact(stop_obj) && !PyBool_Check(stop_obj))
            Py_RETURN_NOTIMPLEMENTED;             /* a float, an int subclass ...: Python's comparison */
        int overflow;
        stop = PyLong_AsLongLongAndOverflow(stop_obj, &overflow);
        if (stop == -1 && PyErr_Occurred())
            return NULL;
        if (overflow)                             /* beyond any work of a page under 4 GiB */
            stop = overflow > 0 ? LLONG_MAX : LLONG_MIN;
    }
    PyObject *encoded = NULL;
    const unsigned char *buf;
    Py_ssize_t n;
    if (PyBytes_CheckExact(html)) {
        buf = (const unsigned char *)PyBytes_AS_STRING(html);
        n = PyBytes_GET_SIZE(html);
    } else if (PyUnicode_CheckExact(html)) {
        if (PyUnicode_IS_ASCII(html)) {           /* its UTF-8 is its data */
            buf = PyUnicode_1BYTE_DATA(html);
            n = PyUnicode_GET_LENGTH(html);
        } else {
            encoded = PyUnicode_AsEncodedString(html, "utf-8", "replace");
            if (!encoded)
                return NULL;
            buf = (const unsigned char *)PyBytes_AS_STRING(encoded);
            n = PyBytes_GET_SIZE(encoded);
        }
    } else {
        Py_RETURN_NOTIMPLEMENTED;
    }
    if ((unsigned long long)n >= (1ULL << 32)) {
        Py_XDECREF(encoded);
        Py_RETURN_NOTIMPLEMENTED;
    }
    long long work = scan(buf, n, has_stop, stop);
    Py_XDECREF(encoded);
    return work < 0 ? NULL : PyLong_FromLongLong(work);
}
