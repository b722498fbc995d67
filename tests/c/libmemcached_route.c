/* Which server libmemcached routes each key to, as pylibmc configures it: the
 * real library computes it (memcached_generate_hash), no server is contacted.
 *
 *   libmemcached_route BEHAVIORS SERVER... < keys > servers
 *
 * A SERVER is HOST:PORT:WEIGHT, [V6]:PORT:WEIGHT or a unix socket's /path.
 *
 * BEHAVIORS is "name=value,..." of pylibmc's routing behaviors: hash and
 * ketama_hash (pylibmc hash names: default, md5, crc, fnv1_64, fnv1a_64, fnv1_32,
 * fnv1a_32, murmur, jenkins), ketama and ketama_weighted (0 or 1), distribution
 * (modula, consistent, consistent_ketama, consistent_weighted, consistent_ketama_spy).
 * They are applied
 * in pylibmc's order (its PylibMC_behaviors table), and before the servers are
 * added, as pylibmc does (so a weight above 1 switches ketama to weighted). Keys
 * are read one per line; for each, the server's "host:port" is written on a line
 * (a unix socket's port is 0).
 * Built by tests/test_real_proxies.py for this machine and for aarch64 (run under
 * qemu-user), whose plain char is unsigned. */
#include <libmemcached-1.0/memcached.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a value's name, as pylibmc spells it */
struct named {
    const char *name;
    uint64_t value;
};

static const struct named HASHES[] = {
    {"default", MEMCACHED_HASH_DEFAULT},   {"md5", MEMCACHED_HASH_MD5},
    {"crc", MEMCACHED_HASH_CRC},           {"fnv1_64", MEMCACHED_HASH_FNV1_64},
    {"fnv1a_64", MEMCACHED_HASH_FNV1A_64}, {"fnv1_32", MEMCACHED_HASH_FNV1_32},
    {"fnv1a_32", MEMCACHED_HASH_FNV1A_32}, {"murmur", MEMCACHED_HASH_MURMUR},
    {"jenkins", MEMCACHED_HASH_JENKINS},   {NULL, 0},
};

static const struct named DISTRIBUTIONS[] = {
    {"modula", MEMCACHED_DISTRIBUTION_MODULA},
    {"consistent", MEMCACHED_DISTRIBUTION_CONSISTENT},
    {"consistent_ketama", MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA},
    {"consistent_weighted", MEMCACHED_DISTRIBUTION_CONSISTENT_WEIGHTED},
    {"consistent_ketama_spy", MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA_SPY},
    {NULL, 0},
};

static const struct named NUMBERS[] = {{"0", 0}, {"1", 1}, {NULL, 0}};

/* pylibmc's order, and each behavior's value names */
static const struct {
    const char *name;
    memcached_behavior_t flag;
    const struct named *values;
} BEHAVIORS[] = {
    {"hash", MEMCACHED_BEHAVIOR_HASH, HASHES},
    {"ketama_hash", MEMCACHED_BEHAVIOR_KETAMA_HASH, HASHES},
    {"ketama", MEMCACHED_BEHAVIOR_KETAMA, NUMBERS},
    {"ketama_weighted", MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, NUMBERS},
    {"distribution", MEMCACHED_BEHAVIOR_DISTRIBUTION, DISTRIBUTIONS},
};

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "libmemcached_route: %s: %s\n", what, detail);
    return 2;
}

/* Add a server given as HOST:PORT:WEIGHT, [V6]:PORT:WEIGHT or /unix/socket/path. */
static int add_server(memcached_st *mc, const char *spec)
{
    char host[256];
    unsigned port, weight;
    if (spec[0] == '/')
        return memcached_server_add_unix_socket_with_weight(mc, spec, 1) == MEMCACHED_SUCCESS;
    if (spec[0] == '[') {
        const char *close = strstr(spec, "]:");
        size_t n = close ? (size_t)(close - spec - 1) : sizeof host;
        if (n >= sizeof host || sscanf(close + 2, "%u:%u", &port, &weight) != 2)
            return 0;
        memcpy(host, spec + 1, n);
        host[n] = '\0';
    } else if (sscanf(spec, "%255[^:]:%u:%u", host, &port, &weight) != 3) {
        return 0;
    }
    return memcached_server_add_with_weight(mc, host, (in_port_t)port, weight) == MEMCACHED_SUCCESS;
}

/* The value of behavior NAME in "name=value,...", or NULL. */
static const char *value_of(const char *spec, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = spec; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            size_t len = strcspn(p + n + 1, ",");
            if (len >= cap)
                return NULL;
            memcpy(out, p + n + 1, len);
            out[len] = '\0';
            return out;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return fail("usage", "name=value,... HOST:PORT:WEIGHT...");
    memcached_st *mc = memcached_create(NULL);
    for (size_t b = 0; b < sizeof BEHAVIORS / sizeof BEHAVIORS[0]; b++) {
        char value[64];
        if (!value_of(argv[1], BEHAVIORS[b].name, value, sizeof value))
            continue;
        const struct named *v = BEHAVIORS[b].values;
        while (v->name && strcmp(v->name, value) != 0)
            v++;
        if (!v->name)
            return fail("unknown value", value);
        if (memcached_behavior_set(mc, BEHAVIORS[b].flag, v->value) != MEMCACHED_SUCCESS)
            return fail("cannot set behavior", BEHAVIORS[b].name);
    }
    for (int i = 2; i < argc; i++) {
        if (!add_server(mc, argv[i]))
            return fail("cannot add server", argv[i]);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n')
            len--;
        uint32_t at = memcached_generate_hash(mc, line, (size_t)len);
        const memcached_instance_st *s = memcached_server_instance_by_position(mc, at);
        printf("%s:%u\n", memcached_server_name(s), (unsigned)memcached_server_port(s));
    }
    free(line);
    memcached_free(mc);
    return 0;
}
