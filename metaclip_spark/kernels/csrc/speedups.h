/* metaclip_spark._speedups: compiled shortcuts of the hot Python paths (see native.py).
 *
 * Every function answers only what it can prove equal to the Python code it shortcuts and
 * returns NotImplemented otherwise (before doing anything visible); the caller then runs the
 * Python code, which stays the reference. One file per concern:
 *   wat_json.c    wat_scan       WAT JSON body -> page URL, base, IMG@ links (wat.py)
 *   warc_frame.c  warc_headers, gzip_records   WARC framing (warc.py)
 *   page_rules.c  page_pairs     the page -> pairs rules (pairs.py)
 *   ac_match.c    Automaton      Aho-Corasick matching of spaced texts (matching.py);
 *                 WorldAutomaton the same type: keys mode and flat files (world_match.py)
 *   nesting.c     nesting_work   the HTML nesting pre-check's scan (htmlpairs.py)
 *   module.c      contains, the module
 */
#ifndef METACLIP_SPEEDUPS_H
#define METACLIP_SPEEDUPS_H

#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>

PyObject *wat_scan(PyObject *self, PyObject *arg);
int wat_json_init(void);

PyObject *warc_headers(PyObject *self, PyObject *arg);
PyObject *gzip_records(PyObject *self, PyObject *args);

PyObject *page_pairs(PyObject *self, PyObject *args);
int page_rules_init(void);

extern PyTypeObject AcType;

PyObject *nesting_work(PyObject *self, PyObject *args);

#endif
