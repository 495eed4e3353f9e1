/*
 * LuaShim: the only code in tcpcheck that touches the Lua C API.
 *
 * Why a C shim: a Lua error is a longjmp. It must never unwind through a
 * Swift frame, so every entry point here runs its work inside lua_pcall,
 * host functions written in Swift never see a lua_State, and lua_error,
 * the instruction-count hook and the allocator all live in this file.
 *
 * Values cross the boundary as a small binary encoding (see tc_encode in
 * LuaShim.c and LuaValueCodec.swift):
 *   0 nil | 1 false | 2 true | 3 int64 | 4 double | 5 u32 len + bytes
 *   6 table: u32 npairs + (key, value)*  | 7 a function or other opaque value
 * and, from the host to Lua only (LuaWriter), for large results:
 *   8 array: u32 n + n values (keys 1..n)
 *   9 string remembered in slot k: u32 k + u32 len + bytes | 10 the string in slot k: u32 k
 * (1 <= k <= 65536; slots live for one value list, or for one stream)
 *   11 (in a host function's result) the list streamed with tc_stream_begin/append
 * A value list is a u32 count followed by that many values.
 */
#ifndef TCPCHECK_LUASHIM_H
#define TCPCHECK_LUASHIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct tc_state tc_state;

/* Outcome of every tc_* call that runs Lua. */
enum {
    TC_OK = 0,
    TC_ERR_RUNTIME = 1,  /* the script raised an error */
    TC_ERR_SYNTAX = 2,   /* the source does not compile */
    TC_ERR_MEMORY = 3,   /* the memory cap was reached */
    TC_ERR_DEADLINE = 4, /* the deadline passed or the run was cancelled */
    TC_ERR_BINARY = 5,   /* a precompiled (bytecode) chunk was refused */
    TC_ERR_VALUE = 6,    /* a value could not be encoded (too deep, too big) */
};

/*
 * The host dispatcher, implemented in Swift. It must not call into Lua
 * except through tc_stream_begin and tc_stream_append.
 * It receives the encoded argument list of a host function call and
 * returns 0 with *out set to a malloc'd encoded value list, or 1 with *out
 * set to a malloc'd UTF-8 error message (not NUL-terminated; *outlen bytes).
 */
typedef int (*tc_dispatch_fn)(void *host, int fid, const uint8_t *args,
                              size_t argslen, uint8_t **out, size_t *outlen);

/*
 * A streamed result, for host functions returning a large list: the host
 * decodes rows into Lua in parts while it is still producing them (e.g. a
 * netlink dump still arriving on another thread), instead of all at the end.
 * Only from the dispatcher, during the call (else TC_ERR_VALUE).
 * tc_stream_begin makes the empty list; tc_stream_append decodes `values`
 * (whole encoded values, one after another) and appends each at the next
 * index, in a protected call. The host's result names the list with tag 8.
 * Both return TC_OK, TC_ERR_MEMORY (cap reached), TC_ERR_DEADLINE (append
 * only: deadline passed or cancelled) or TC_ERR_VALUE (malformed values).
 */
int tc_stream_begin(tc_state *st);
int tc_stream_append(tc_state *st, const uint8_t *values, size_t len);

/* A fresh state with the allowlisted libraries only. NULL if out of memory. */
tc_state *tc_open(size_t mem_limit, void *host, tc_dispatch_fn dispatch);
void tc_close(tc_state *st);

/* Deadline in seconds from now; <= 0 disables it. */
void tc_set_deadline(tc_state *st, double seconds);
/* Makes the running script fail at its next instruction-count check. Thread-safe. */
void tc_cancel(tc_state *st);
/* Changes the memory cap (a check's own metadata may ask for another). */
void tc_set_memory_limit(tc_state *st, size_t mem_limit);
size_t tc_mem_used(const tc_state *st);
size_t tc_mem_peak(const tc_state *st);

/* Sets global `module`.`name` (or global `name` when module is NULL) to a
 * function that calls the dispatcher with `fid`. */
int tc_register(tc_state *st, const char *module, const char *name, int fid);

/*
 * Loads `src` in text mode as `chunkname`, runs it, and stores its first
 * result in the registry under `key`. *out receives the encoded result
 * list on success, or the error message on failure. Free *out with free().
 */
int tc_load(tc_state *st, const char *src, size_t len, const char *chunkname,
            const char *key, uint8_t **out, size_t *outlen);

/*
 * Calls registry[key] (or registry[key][field] when field is not NULL).
 * When `first` is not NULL, registry[first] is passed as the first argument
 * (so a stored value, such as a loaded check, can be handed back in),
 * followed by the values of the encoded list `args`. *out as in tc_load.
 */
int tc_call(tc_state *st, const char *key, const char *field, const char *first,
            const uint8_t *args, size_t argslen, uint8_t **out, size_t *outlen);

#endif
