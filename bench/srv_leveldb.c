/* SPDX-License-Identifier: MIT */
/*
 * srv_leveldb.c - LevelDB through its C API: the requests completed in one
 * loop pass form one write batch (key = request number, value = payload),
 * written with sync = true, so LevelDB's log is fsync'ed before any ack.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <leveldb/c.h>

#include "srv.h"

struct ldb {
	leveldb_t *db;
	leveldb_options_t *opts;
	leveldb_writeoptions_t *wo;
	leveldb_writebatch_t *wb;
	uint64_t seq;
	int staged;
};

static int ldb_open(const struct srv_opts *o, void **out)
{
	struct ldb *l = calloc(1, sizeof(*l));
	char *err = NULL;

	if (!l || !o->path)
		goto fail;
	l->opts = leveldb_options_create();
	leveldb_options_set_create_if_missing(l->opts, 1);
	l->db = leveldb_open(l->opts, o->path, &err);
	if (err) {
		fprintf(stderr, "leveldb_open: %s\n", err);
		leveldb_free(err);
		goto fail;
	}
	l->wo = leveldb_writeoptions_create();
	leveldb_writeoptions_set_sync(l->wo, 1);
	l->wb = leveldb_writebatch_create();
	*out = l;
	return 0;
fail:
	free(l);
	return -1;
}

static int ldb_append(void *st, const void *payload, size_t len)
{
	struct ldb *l = st;
	char key[8];
	uint64_t k = ++l->seq;

	for (int i = 7; i >= 0; i--, k >>= 8)
		key[i] = (char)(k & 0xff); /* big-endian: keys sort in arrival order */
	leveldb_writebatch_put(l->wb, key, sizeof(key), payload, len);
	l->staged++;
	return 0;
}

static int ldb_commit(void *st)
{
	struct ldb *l = st;
	char *err = NULL;

	if (!l->staged)
		return 0;
	leveldb_write(l->db, l->wo, l->wb, &err);
	leveldb_writebatch_clear(l->wb);
	l->staged = 0;
	if (err) {
		fprintf(stderr, "leveldb_write: %s\n", err);
		leveldb_free(err);
		return -1;
	}
	return 0;
}

static void ldb_close(void *st)
{
	struct ldb *l = st;

	leveldb_writebatch_destroy(l->wb);
	leveldb_writeoptions_destroy(l->wo);
	leveldb_close(l->db);
	leveldb_options_destroy(l->opts);
	free(l);
}

static const struct backend ldb_backend = {
	.name = "leveldb",
	.open = ldb_open,
	.append = ldb_append,
	.commit = ldb_commit,
	.close = ldb_close,
};

int main(int argc, char **argv)
{
	return srv_main(argc, argv, &ldb_backend);
}
