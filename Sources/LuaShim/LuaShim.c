/*
 * LuaShim.c: the sandbox around each check's Lua state.
 *
 * Rules this file keeps (see LuaShim.h for why):
 *   - every entry point runs its Lua work inside lua_pcall;
 *   - the Swift dispatcher is called with no Lua API use of its own, and
 *     whatever it returns is pushed back inside a nested lua_pcall;
 *   - the allocator enforces the memory cap and the count hook the deadline.
 */
#define _GNU_SOURCE
#include "LuaShim.h"

#include <lua5.4/lauxlib.h>
#include <lua5.4/lua.h>
#include <lua5.4/lualib.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TC_MAX_DEPTH 100
#define TC_MAX_SLOTS 65536 /* remembered strings per value list (LuaWriter.maxSlots) */
#define TC_MAX_ENCODED (64u << 20) /* no single crossing larger than 64 MiB */
#define TC_HOOK_COUNT 1000         /* instructions between deadline checks */

struct tc_state {
    lua_State *L;
    size_t limit, used, peak;
    int mem_hit;
    atomic_int cancelled;
    int has_deadline;
    struct timespec deadline;
    int timed_out;
    void *host;
    tc_dispatch_fn dispatch;
    /* While a host function runs: the calling Lua thread, and the stack slot
     * of its streamed result table (0: none) with the rows it holds. */
    lua_State *calling;
    int stream_slot;
    lua_Integer stream_count;
    int stream_paused_gc;
};

static tc_state *state_of(lua_State *L) { return *(tc_state **)lua_getextraspace(L); }

/* ---- memory cap ------------------------------------------------------- */

static void *tc_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    tc_state *st = ud;
    if (ptr == NULL) osize = 0; /* osize then encodes the object type */
    if (nsize == 0) {
        free(ptr);
        st->used -= osize;
        return NULL;
    }
    if (nsize > osize && st->used - osize + nsize > st->limit) {
        st->mem_hit = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p == NULL) return NULL;
    st->used = st->used - osize + nsize;
    if (st->used > st->peak) st->peak = st->used;
    return p;
}

/* ---- deadline --------------------------------------------------------- */

static int deadline_passed(const tc_state *st) {
    if (!st->has_deadline) return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > st->deadline.tv_sec ||
           (now.tv_sec == st->deadline.tv_sec && now.tv_nsec >= st->deadline.tv_nsec);
}

static void tc_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    tc_state *st = state_of(L);
    if (atomic_load(&st->cancelled) || deadline_passed(st)) {
        st->timed_out = 1;
        /* Fire on every instruction from now on, so a script that catches
         * the error with pcall or a coroutine is stopped again at once. */
        lua_sethook(L, tc_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "check stopped: deadline exceeded");
    }
}

void tc_set_deadline(tc_state *st, double seconds) {
    if (seconds <= 0) {
        st->has_deadline = 0;
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &st->deadline);
    long long ns = (long long)(seconds * 1e9) + st->deadline.tv_nsec;
    st->deadline.tv_sec += (time_t)(ns / 1000000000LL);
    st->deadline.tv_nsec = (long)(ns % 1000000000LL);
    st->has_deadline = 1;
}

void tc_cancel(tc_state *st) { atomic_store(&st->cancelled, 1); }
void tc_set_memory_limit(tc_state *st, size_t mem_limit) { st->limit = mem_limit; }
size_t tc_mem_used(const tc_state *st) { return st->used; }
size_t tc_mem_peak(const tc_state *st) { return st->peak; }

/* ---- encoding: Lua value -> bytes ------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    const char *err;
} tc_buf;

static void put(tc_buf *b, const void *data, size_t n) {
    if (b->err) return;
    if (b->len + n > TC_MAX_ENCODED) {
        b->err = "value too large to pass between Lua and the host (over 64 MiB)";
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (np == NULL) {
            b->err = "out of memory while encoding a value";
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_u8(tc_buf *b, uint8_t v) { put(b, &v, 1); }
static void put_u32(tc_buf *b, uint32_t v) { put(b, &v, 4); }

static int encodable_key(int t) { return t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN; }

static void encode(lua_State *L, int idx, tc_buf *b, int depth) {
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
    case LUA_TNONE:
        put_u8(b, 0);
        break;
    case LUA_TBOOLEAN:
        put_u8(b, lua_toboolean(L, idx) ? 2 : 1);
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            long long v = (long long)lua_tointeger(L, idx);
            put_u8(b, 3);
            put(b, &v, 8);
        } else {
            double v = (double)lua_tonumber(L, idx);
            put_u8(b, 4);
            put(b, &v, 8);
        }
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n); /* a real string: no conversion */
        if (n > TC_MAX_ENCODED) {
            b->err = "string too large to pass between Lua and the host";
            return;
        }
        put_u8(b, 5);
        put_u32(b, (uint32_t)n);
        put(b, s, n);
        break;
    }
    case LUA_TTABLE: {
        if (depth >= TC_MAX_DEPTH) {
            b->err = "table nested more than 100 levels deep (does it contain itself?)";
            return;
        }
        if (!lua_checkstack(L, 3)) {
            b->err = "Lua stack overflow while encoding a table";
            return;
        }
        put_u8(b, 6);
        size_t at = b->len;
        put_u32(b, 0);
        uint32_t n = 0;
        lua_pushnil(L);
        while (!b->err && lua_next(L, idx) != 0) {
            if (encodable_key(lua_type(L, -2))) {
                encode(L, -2, b, depth + 1);
                encode(L, -1, b, depth + 1);
                n++;
            }
            lua_pop(L, 1);
        }
        if (b->err) {
            return; /* lua_next left the key on the stack; callers reset the top */
        }
        memcpy(b->p + at, &n, 4);
        break;
    }
    default:
        put_u8(b, 7); /* function, userdata, thread: opaque to the host */
        break;
    }
}

/* Encodes stack slots first..last as a value list. */
static void encode_list(lua_State *L, int first, int last, tc_buf *b) {
    int top = lua_gettop(L);
    uint32_t n = last >= first ? (uint32_t)(last - first + 1) : 0;
    put_u32(b, n);
    for (int i = first; i <= last && !b->err; i++) encode(L, i, b, 0);
    lua_settop(L, top);
}

/* ---- decoding: bytes -> Lua values (always inside a protected call) --- */

typedef struct {
    const uint8_t *p, *end;
    int slots; /* stack index of the table of remembered strings (tags 9, 10) */
    int stream; /* stack index of a streamed result list (tag 11), 0 if none */
} tc_reader;

static int get(tc_reader *r, void *dst, size_t n) {
    if ((size_t)(r->end - r->p) < n) return 0;
    memcpy(dst, r->p, n);
    r->p += n;
    return 1;
}

static void decode(lua_State *L, tc_reader *r, int depth) {
    uint8_t tag;
    if (depth > TC_MAX_DEPTH || !get(r, &tag, 1)) luaL_error(L, "malformed value from host");
    luaL_checkstack(L, 3, "decoding a host value");
    switch (tag) {
    case 0:
    case 7:
        lua_pushnil(L);
        break;
    case 1:
    case 2:
        lua_pushboolean(L, tag == 2);
        break;
    case 3: {
        long long v;
        if (!get(r, &v, 8)) luaL_error(L, "malformed integer from host");
        lua_pushinteger(L, (lua_Integer)v);
        break;
    }
    case 4: {
        double v;
        if (!get(r, &v, 8)) luaL_error(L, "malformed number from host");
        lua_pushnumber(L, (lua_Number)v);
        break;
    }
    case 5: {
        uint32_t n;
        if (!get(r, &n, 4) || (size_t)(r->end - r->p) < n) luaL_error(L, "malformed string from host");
        lua_pushlstring(L, (const char *)r->p, n);
        r->p += n;
        break;
    }
    case 11: /* the list the host function streamed (tc_stream_begin) */
        if (r->stream) lua_pushvalue(L, r->stream);
        else lua_pushnil(L);
        break;
    case 6: {
        uint32_t n;
        if (!get(r, &n, 4)) luaL_error(L, "malformed table from host");
        lua_createtable(L, 0, n < 1024 ? (int)n : 1024);
        for (uint32_t i = 0; i < n; i++) {
            decode(L, r, depth + 1);
            decode(L, r, depth + 1);
            if (lua_isnil(L, -2)) lua_pop(L, 2); /* a nil key cannot be stored */
            else lua_rawset(L, -3);
        }
        break;
    }
    case 8: {
        /* An array: n values, keys 1..n, in the table's array part. */
        uint32_t n;
        if (!get(r, &n, 4)) luaL_error(L, "malformed array from host");
        lua_createtable(L, n < (1u << 20) ? (int)n : (1 << 20), 0);
        for (uint32_t i = 0; i < n; i++) {
            decode(L, r, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case 9: {
        /* A string the host will repeat: kept in slot k, so that Lua
         * interns it once and a repeat (tag 10) is an array read. */
        uint32_t k, n;
        if (!get(r, &k, 4) || k < 1 || k > TC_MAX_SLOTS || !get(r, &n, 4) || (size_t)(r->end - r->p) < n)
            luaL_error(L, "malformed remembered string from host");
        lua_pushlstring(L, (const char *)r->p, n);
        r->p += n;
        lua_pushvalue(L, -1);
        lua_rawseti(L, r->slots, k);
        break;
    }
    case 10: {
        uint32_t k;
        if (!get(r, &k, 4) || k < 1 || k > TC_MAX_SLOTS || lua_rawgeti(L, r->slots, k) != LUA_TSTRING)
            luaL_error(L, "malformed string reference from host");
        break;
    }
    default:
        luaL_error(L, "malformed value tag %d from host", (int)tag);
    }
}

/* Pushes every value of an encoded list; returns how many. */
static int decode_list(lua_State *L, tc_reader *r) {
    uint32_t n;
    if (!get(r, &n, 4)) luaL_error(L, "malformed value list from host");
    if (n > 250) luaL_error(L, "too many values from host");
    lua_createtable(L, 0, 0);
    r->slots = lua_gettop(L);
    for (uint32_t i = 0; i < n; i++) decode(L, r, 0);
    lua_remove(L, r->slots);
    return (int)n;
}

/* Arguments: the reader, then the streamed table if r->stream is set. */
static int decode_list_protected(lua_State *L) {
    tc_reader *r = lua_touserdata(L, 1);
    lua_remove(L, 1);
    if (r->stream) r->stream = 1;
    return decode_list(L, r);
}

/* ---- host function trampoline ---------------------------------------- */

static int trampoline(lua_State *L) {
    tc_state *st = state_of(L);
    int fid = (int)lua_tointeger(L, lua_upvalueindex(1));
    if (atomic_load(&st->cancelled)) return luaL_error(L, "check stopped: deadline exceeded");

    tc_buf args = {0};
    encode_list(L, 1, lua_gettop(L), &args);
    if (args.err) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", args.err);
        free(args.p);
        return luaL_error(L, "%s", msg);
    }

    uint8_t *out = NULL;
    size_t outlen = 0;
    st->calling = L;
    st->stream_slot = 0;
    int rc = st->dispatch(st->host, fid, args.p, args.len, &out, &outlen);
    free(args.p);
    st->calling = NULL;
    int stream = st->stream_slot;
    if (stream && st->stream_paused_gc) lua_gc(L, LUA_GCRESTART);

    if (rc != 0) {
        st->stream_slot = 0;
        char msg[1024];
        size_t n = outlen < sizeof msg - 1 ? outlen : sizeof msg - 1;
        if (out) memcpy(msg, out, n);
        msg[n] = 0;
        free(out);
        return luaL_error(L, "%s", msg);
    }

    /* Push the results in a nested protected call so that a memory error
     * while pushing cannot leak the host's buffer. */
    tc_reader r = {out, out + outlen, 0, stream};
    int base = lua_gettop(L);
    lua_pushcfunction(L, decode_list_protected);
    lua_pushlightuserdata(L, &r);
    if (stream) lua_pushvalue(L, stream);
    /* A large result (50,000 sockets) is all live data: collecting while it
     * is built only re-marks it. Pause the collector for it; the memory cap
     * still holds (the allocator enforces it). */
    int pause_gc = outlen > (1u << 20) && lua_gc(L, LUA_GCISRUNNING);
    if (pause_gc) lua_gc(L, LUA_GCSTOP);
    int status = lua_pcall(L, stream ? 2 : 1, LUA_MULTRET, 0);
    if (pause_gc) lua_gc(L, LUA_GCRESTART);
    free(out);
    st->stream_slot = 0;
    if (status != LUA_OK) return lua_error(L);
    int results = lua_gettop(L) - base;
    if (stream) { /* the list and its slots, below the results */
        lua_remove(L, stream);
        lua_remove(L, stream);
    }
    return results;
}

/* ---- streamed results -------------------------------------------------- */

/* The list, and its table of remembered strings (tags 9, 10), which lasts
 * for the whole stream so that each part can recall the strings of earlier ones. */
static int stream_new(lua_State *L) {
    lua_createtable(L, 0, 0);
    lua_createtable(L, 0, 0);
    return 2;
}

int tc_stream_begin(tc_state *st) {
    lua_State *L = st->calling;
    if (L == NULL || st->stream_slot) return TC_ERR_VALUE;
    if (!lua_checkstack(L, 8)) return TC_ERR_MEMORY;
    lua_pushcfunction(L, stream_new);
    if (lua_pcall(L, 0, 2, 0) != LUA_OK) {
        lua_pop(L, 1);
        return TC_ERR_MEMORY;
    }
    st->stream_slot = lua_gettop(L) - 1;
    st->stream_count = 0;
    /* As for a large result: the rows are all live, collecting would only re-mark them. */
    st->stream_paused_gc = lua_gc(L, LUA_GCISRUNNING);
    if (st->stream_paused_gc) lua_gc(L, LUA_GCSTOP);
    return TC_OK;
}

/* Arguments: the list, its slots, the reader, the row counter. */
static int stream_append_protected(lua_State *L) {
    tc_reader *r = lua_touserdata(L, 3);
    lua_Integer *count = lua_touserdata(L, 4);
    r->slots = 2;
    while (r->p < r->end) {
        decode(L, r, 1);
        lua_rawseti(L, 1, ++*count);
    }
    return 0;
}

int tc_stream_append(tc_state *st, const uint8_t *values, size_t len) {
    lua_State *L = st->calling;
    if (L == NULL || !st->stream_slot) return TC_ERR_VALUE;
    if (atomic_load(&st->cancelled) || deadline_passed(st)) return TC_ERR_DEADLINE;
    tc_reader r = {values, values + len, 0, 0};
    lua_pushcfunction(L, stream_append_protected);
    lua_pushvalue(L, st->stream_slot);
    lua_pushvalue(L, st->stream_slot + 1);
    lua_pushlightuserdata(L, &r);
    lua_pushlightuserdata(L, &st->stream_count);
    int status = lua_pcall(L, 4, 0, 0);
    if (status == LUA_OK) return TC_OK;
    lua_pop(L, 1);
    return status == LUA_ERRMEM ? TC_ERR_MEMORY : TC_ERR_VALUE;
}

/* ---- opening a sandboxed state --------------------------------------- */

/* tcpcheck_compile(text, chunkname): for the prelude only, which takes this
 * global and clears it before any check runs (require compiles a library on
 * its first use with it). Source text only, never bytecode. Returns the
 * function, or nil and the message; running out of memory stays an error. */
static int compile_text(lua_State *L) {
    size_t len = 0;
    const char *src = luaL_checklstring(L, 1, &len);
    const char *name = luaL_checkstring(L, 2);
    int status = luaL_loadbufferx(L, src, len, name, "t");
    if (status == LUA_ERRMEM) return lua_error(L);
    if (status != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    return 1;
}

static int open_impl(lua_State *L) {
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},         {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table},   {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8},   {LUA_COLIBNAME, luaopen_coroutine},
        {NULL, NULL},
    };
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    /* Base functions that reach files, compile code or steer the collector. */
    static const char *const dropped[] = {"dofile", "loadfile", "load", "collectgarbage", "print", NULL};
    for (const char *const *name = dropped; *name; name++) {
        lua_pushnil(L);
        lua_setglobal(L, *name);
    }
    lua_pushcfunction(L, compile_text);
    lua_setglobal(L, "tcpcheck_compile");
    /* string.dump makes bytecode, which checks can never load anyway. */
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    return 0;
}

static int tc_panic(lua_State *L) {
    /* Only reachable if an error escapes every protected call: a bug here. */
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "tcpcheck: internal error: unprotected Lua error: %s\n", msg ? msg : "?");
    abort();
}

tc_state *tc_open(size_t mem_limit, void *host, tc_dispatch_fn dispatch) {
    tc_state *st = calloc(1, sizeof *st);
    if (st == NULL) return NULL;
    st->limit = mem_limit;
    st->host = host;
    st->dispatch = dispatch;
    atomic_init(&st->cancelled, 0);
    st->L = lua_newstate(tc_alloc, st);
    if (st->L == NULL) {
        free(st);
        return NULL;
    }
    *(tc_state **)lua_getextraspace(st->L) = st;
    lua_atpanic(st->L, tc_panic);
    lua_setwarnf(st->L, NULL, NULL); /* warnings would go to stderr */
    lua_pushcfunction(st->L, open_impl);
    if (lua_pcall(st->L, 0, 0, 0) != LUA_OK) {
        tc_close(st);
        return NULL;
    }
    lua_sethook(st->L, tc_hook, LUA_MASKCOUNT, TC_HOOK_COUNT);
    return st;
}

void tc_close(tc_state *st) {
    if (st == NULL) return;
    if (st->L) lua_close(st->L);
    free(st);
}

/* ---- protected entry points ------------------------------------------ */

typedef struct {
    const char *module, *name;
    int fid;
} register_args;

static int register_impl(lua_State *L) {
    register_args *a = lua_touserdata(L, 1);
    lua_pushinteger(L, a->fid);
    lua_pushcclosure(L, trampoline, 1);
    if (a->module == NULL) {
        lua_setglobal(L, a->name);
        return 0;
    }
    if (lua_getglobal(L, a->module) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setglobal(L, a->module);
    }
    lua_insert(L, -2);
    lua_setfield(L, -2, a->name);
    lua_pop(L, 1);
    return 0;
}

int tc_register(tc_state *st, const char *module, const char *name, int fid) {
    register_args a = {module, name, fid};
    lua_State *L = st->L;
    lua_settop(L, 0);
    lua_pushcfunction(L, register_impl);
    lua_pushlightuserdata(L, &a);
    int status = lua_pcall(L, 1, 0, 0);
    lua_settop(L, 0);
    return status == LUA_OK ? TC_OK : TC_ERR_MEMORY;
}

/* Message handler: keep the message, name non-string error objects. It runs
 * no Lua code (no __tostring): a handler can run with hooks off, where the
 * deadline could not stop it. */
static int msgh(lua_State *L) {
    if (lua_type(L, 1) == LUA_TSTRING) return 1;
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    return 1;
}

typedef struct {
    /* in */
    const char *src;
    size_t len;
    const char *chunkname, *key, *field, *first;
    const uint8_t *args;
    size_t argslen;
    /* out */
    tc_buf out;
    int status;
} call_args;

static int status_of(tc_state *st, int lua_status) {
    if (st->timed_out) return TC_ERR_DEADLINE;
    if (lua_status == LUA_ERRMEM) return TC_ERR_MEMORY;
    if (lua_status == LUA_ERRSYNTAX) return TC_ERR_SYNTAX;
    return TC_ERR_RUNTIME;
}

/* Runs the function at the top of the stack (with nargs arguments above it)
 * under msgh, then encodes either its results or the error message. */
static void run_and_encode(lua_State *L, call_args *a, int nargs) {
    tc_state *st = state_of(L);
    int fn = lua_gettop(L) - nargs;
    lua_pushcfunction(L, msgh);
    lua_insert(L, fn);
    int status = lua_pcall(L, nargs, LUA_MULTRET, fn);
    lua_remove(L, fn);
    if (status != LUA_OK) {
        a->status = status_of(st, status);
        size_t n = 0;
        const char *m = lua_tolstring(L, -1, &n);
        if (m == NULL) m = "(no message)", n = strlen(m);
        put(&a->out, m, n);
        return;
    }
    if (a->key) {
        lua_pushvalue(L, fn);
        lua_setfield(L, LUA_REGISTRYINDEX, a->key); /* first result, or nil */
    }
    encode_list(L, fn, lua_gettop(L), &a->out);
    if (a->out.err) {
        const char *err = a->out.err;
        a->out.err = NULL;
        a->out.len = 0;
        a->status = TC_ERR_VALUE;
        put(&a->out, err, strlen(err));
    }
}

static int load_impl(lua_State *L) {
    call_args *a = lua_touserdata(L, 1);
    lua_settop(L, 0);
    if (a->len > 0 && a->src[0] == LUA_SIGNATURE[0]) {
        a->status = TC_ERR_BINARY;
        const char *m = "precompiled Lua bytecode is refused; give the check as Lua source text";
        put(&a->out, m, strlen(m));
        return 0;
    }
    int status = luaL_loadbufferx(L, a->src, a->len, a->chunkname, "t");
    if (status != LUA_OK) {
        a->status = status_of(state_of(L), status);
        size_t n = 0;
        const char *m = lua_tolstring(L, -1, &n);
        put(&a->out, m ? m : "?", m ? n : 1);
        return 0;
    }
    run_and_encode(L, a, 0);
    return 0;
}

static int call_impl(lua_State *L) {
    call_args *a = lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_getfield(L, LUA_REGISTRYINDEX, a->key);
    if (a->field) {
        lua_getfield(L, -1, a->field);
        lua_remove(L, -2);
    }
    int nargs = 0;
    if (a->first) {
        lua_getfield(L, LUA_REGISTRYINDEX, a->first);
        nargs++;
    }
    tc_reader r = {a->args, a->args + a->argslen, 0, 0};
    if (a->args) nargs += decode_list(L, &r);
    const char *key = a->key;
    a->key = NULL; /* tc_call does not store results */
    run_and_encode(L, a, nargs);
    a->key = key;
    return 0;
}

static int enter(tc_state *st, lua_CFunction impl, call_args *a, uint8_t **out, size_t *outlen) {
    lua_State *L = st->L;
    lua_settop(L, 0);
    lua_pushcfunction(L, impl);
    lua_pushlightuserdata(L, a);
    int status = lua_pcall(L, 1, 0, 0);
    if (status != LUA_OK) {
        /* Failed outside the script itself: decoding, or the cap while
         * preparing the call. */
        a->status = status_of(st, status);
        a->out.len = 0;
        a->out.err = NULL;
        const char *m = lua_tostring(L, -1);
        if (m == NULL) m = "error while preparing the Lua call";
        put(&a->out, m, strlen(m));
    }
    lua_settop(L, 0);
    *out = a->out.p;
    *outlen = a->out.len;
    if (a->out.err && a->out.p == NULL) *outlen = 0;
    return a->status;
}

int tc_load(tc_state *st, const char *src, size_t len, const char *chunkname, const char *key,
            uint8_t **out, size_t *outlen) {
    call_args a = {0};
    a.src = src;
    a.len = len;
    a.chunkname = chunkname;
    a.key = key;
    return enter(st, load_impl, &a, out, outlen);
}

int tc_call(tc_state *st, const char *key, const char *field, const char *first, const uint8_t *args,
            size_t argslen, uint8_t **out, size_t *outlen) {
    call_args a = {0};
    a.key = key;
    a.field = field;
    a.first = first;
    a.args = args;
    a.argslen = argslen;
    return enter(st, call_impl, &a, out, outlen);
}
