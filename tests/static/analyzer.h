/*
 * tests/static/analyzer.h: what the clang static analyzer cannot see
 * across files, for `make static` only (forced with -include into every
 * file but log.c, which defines error_set; never part of a build).
 *
 * Each file is analysed alone, so a call to error_set() looks as if it
 * could return anything, ST_OK included, and every "return error_set(...)"
 * error path then reads as a success path with its outputs unset. log.c
 * guarantees that error_set returns its status argument; this says so.
 * Every status argument in src/ is free of side effects, so naming it
 * twice is harmless.
 */
#ifndef POSTINO_STATIC_ANALYZER_H
#define POSTINO_STATIC_ANALYZER_H

#include "postino.h"

#define error_set(e, s, ...) \
	((void)(error_set)((e), (s), __VA_ARGS__), (s))

#endif
