/* SPDX-License-Identifier: MIT */
/*
 * srv_pmemlog.c - PMDK libpmemlog: the batch of requests completed in one
 * loop pass goes in with one pmemlog_appendv(), which copies and persists
 * the payloads and then persists the log's write offset (its commit point).
 * A full log is rewound: the benchmark measures appends, not retention.
 */
#include <errno.h>
#include <libpmemlog.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "srv.h"

struct plog {
	PMEMlogpool *plp;
	struct iovec *iov;
	int n, cap;
	size_t bytes;
};

static int plog_open(const struct srv_opts *o, void **out)
{
	struct plog *p = calloc(1, sizeof(*p));

	if (!p || !o->path)
		goto fail;
	unlink(o->path);
	p->plp = pmemlog_create(o->path, (size_t)o->size, 0644);
	if (!p->plp) {
		fprintf(stderr, "pmemlog_create: %s\n", pmemlog_errormsg());
		goto fail;
	}
	/* The pool handle is the start of the pool's mapping: prefault it as
	 * libpktstore and the baseline do (best effort). */
	madvise(p->plp, (size_t)o->size, MADV_POPULATE_WRITE);
	*out = p;
	return 0;
fail:
	free(p);
	return -1;
}

static int plog_append(void *st, const void *payload, size_t len)
{
	struct plog *p = st;

	if (p->n == p->cap) {
		int cap = p->cap ? 2 * p->cap : 64;
		struct iovec *v = realloc(p->iov, (size_t)cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->iov = v;
		p->cap = cap;
	}
	p->iov[p->n++] = (struct iovec){ .iov_base = (void *)payload, .iov_len = len };
	p->bytes += len;
	return 0;
}

static int plog_commit(void *st)
{
	struct plog *p = st;
	int ret = 0;

	if (!p->n)
		return 0;
	if (pmemlog_appendv(p->plp, p->iov, p->n) && errno == ENOSPC) {
		pmemlog_rewind(p->plp);
		ret = pmemlog_appendv(p->plp, p->iov, p->n);
	}
	p->n = 0;
	p->bytes = 0;
	return ret;
}

static void plog_close(void *st)
{
	struct plog *p = st;

	pmemlog_close(p->plp);
	free(p->iov);
	free(p);
}

static const struct backend plog_backend = {
	.name = "pmemlog",
	.open = plog_open,
	.append = plog_append,
	.commit = plog_commit,
	.close = plog_close,
};

int main(int argc, char **argv)
{
	return srv_main(argc, argv, &plog_backend);
}
