/* SPDX-License-Identifier: MIT */
/*
 * backends.c - the list of receive backends, best first. Adding a backend
 * is its own file and a line here.
 */
#include <string.h>

#include "backend.h"

extern const struct ps_backend_ops ps_backend_zcrx;
extern const struct ps_backend_ops ps_backend_uring_inc;
extern const struct ps_backend_ops ps_backend_uring_fixed;
extern const struct ps_backend_ops ps_backend_socket;

/* Best first. The automatic choice takes the first whose probe and init
 * succeed; names, the range of recv_path and the choice all come from here. */
const struct ps_backend_ops *const ps_backends[] = {
	&ps_backend_zcrx,
	&ps_backend_uring_inc,
	&ps_backend_uring_fixed,
	&ps_backend_socket,
};
const unsigned ps_nbackends = sizeof(ps_backends) / sizeof(ps_backends[0]);

const struct ps_backend_ops *ps_backend_by_path(enum pktstore_recv_path path)
{
	for (unsigned i = 0; i < ps_nbackends; i++)
		if (ps_backends[i]->path == path)
			return ps_backends[i];
	return NULL;
}

const struct ps_backend_ops *ps_backend_by_name(const char *name)
{
	for (unsigned i = 0; i < ps_nbackends; i++)
		if (!strcmp(ps_backends[i]->name, name))
			return ps_backends[i];
	return NULL;
}
