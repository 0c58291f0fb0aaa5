/* SPDX-License-Identifier: MIT */
/*
 * srv_null.c - networking only: receive each request, discard it, ack it.
 * The floor every other server is measured against.
 */
#include "srv.h"

static int null_open(const struct srv_opts *o, void **st)
{
	(void)o;
	*st = NULL;
	return 0;
}

static int null_append(void *st, const void *payload, size_t len)
{
	(void)st;
	(void)payload;
	(void)len;
	return 0;
}

static int null_commit(void *st)
{
	(void)st;
	return 0;
}

static void null_close(void *st)
{
	(void)st;
}

static const struct backend null_backend = {
	.name = "netonly",
	.open = null_open,
	.append = null_append,
	.commit = null_commit,
	.close = null_close,
};

int main(int argc, char **argv)
{
	return srv_main(argc, argv, &null_backend);
}
