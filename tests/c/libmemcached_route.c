/* Which server libmemcached routes each key to, as pylibmc configures it: the
 * real library computes it (memcached_generate_hash), no server is contacted.
 *
 *   libmemcached_route HASH MODE HOST:PORT:WEIGHT... < keys > servers
 *
 * HASH is a pylibmc hash name (default, md5, crc, fnv1_64, fnv1a_64, fnv1_32,
 * fnv1a_32, murmur, jenkins); MODE is ketama or ketama_weighted, applied after the hash,
 * and both before the servers are added, as pylibmc does (so a weight above 1
 * switches ketama to weighted). Keys are read one per line; for each, the
 * server's "host:port" is written on a line. Built by tests/test_real_proxies.py
 * for this machine and for aarch64 (run under qemu-user), whose plain char is
 * unsigned. */
#include <libmemcached-1.0/memcached.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    memcached_hash_t hash;
} HASHES[] = {
    {"default", MEMCACHED_HASH_DEFAULT},   {"md5", MEMCACHED_HASH_MD5},
    {"crc", MEMCACHED_HASH_CRC},           {"fnv1_64", MEMCACHED_HASH_FNV1_64},
    {"fnv1a_64", MEMCACHED_HASH_FNV1A_64}, {"fnv1_32", MEMCACHED_HASH_FNV1_32},
    {"fnv1a_32", MEMCACHED_HASH_FNV1A_32}, {"murmur", MEMCACHED_HASH_MURMUR},
    {"jenkins", MEMCACHED_HASH_JENKINS},
};

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "libmemcached_route: %s: %s\n", what, detail);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return fail("usage", "HASH ketama|ketama_weighted HOST:PORT:WEIGHT...");
    memcached_st *mc = memcached_create(NULL);
    size_t h = 0, nh = sizeof HASHES / sizeof HASHES[0];
    while (h < nh && strcmp(HASHES[h].name, argv[1]) != 0)
        h++;
    if (h == nh)
        return fail("unknown hash", argv[1]);
    memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_HASH, (uint64_t)HASHES[h].hash);
    if (strcmp(argv[2], "ketama") == 0)
        memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_KETAMA, 1);
    else if (strcmp(argv[2], "ketama_weighted") == 0)
        memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1);
    else
        return fail("unknown mode", argv[2]);
    for (int i = 3; i < argc; i++) {
        char host[256];
        unsigned port, weight;
        if (sscanf(argv[i], "%255[^:]:%u:%u", host, &port, &weight) != 3)
            return fail("not HOST:PORT:WEIGHT", argv[i]);
        if (memcached_server_add_with_weight(mc, host, (in_port_t)port, weight) !=
            MEMCACHED_SUCCESS)
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
