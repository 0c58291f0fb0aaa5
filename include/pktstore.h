/* SPDX-License-Identifier: MIT */
/*
 * pktstore.h - receive TCP bytes straight into a persistent-memory arena and
 * keep each received segment as a durable, checksummed pkt-record.
 *
 * Conventions (every call):
 *   - returns a count or 0 on success and a negative errno on failure, or
 *     one of the library's own codes below (PKTSTORE_E*, outside the errno
 *     range); errno is never read or written; an errno value always keeps
 *     its operating-system meaning;
 *   - pktstore_strerror() turns any return value into text;
 *   - record views (struct pktstore_rec) point into the mapped arena and stay
 *     valid until the record is released or the store is closed.
 *
 * Threads: one struct pktstore is driven by one thread at a time (the caller
 * serialises calls on it, as with an io_uring ring). On the io_uring paths
 * the first thread that attaches or receives becomes the store's receiving
 * thread, and attach, detach and receive calls must stay on it. Distinct
 * stores share nothing. The receive path takes no lock.
 *
 * See pktstore(7) for the model, the on-media format and the durability
 * contract, and one section-3 page per call.
 */
#ifndef PKTSTORE_H
#define PKTSTORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PKTSTORE_VERSION_MAJOR 1
#define PKTSTORE_VERSION_MINOR 0
#define PKTSTORE_VERSION_PATCH 0
/* The version this header belongs to; pktstore_version() gives the
 * library's, which may be newer. */
#define PKTSTORE_VERSION                                                              \
	(PKTSTORE_VERSION_MAJOR * 10000 + PKTSTORE_VERSION_MINOR * 100 + PKTSTORE_VERSION_PATCH)

#if defined(PKTSTORE_BUILDING_LIBRARY) && defined(__GNUC__)
#define PKTSTORE_API __attribute__((visibility("default")))
#else
#define PKTSTORE_API
#endif

struct pktstore;
struct iovec;

/* The library's own error codes: conditions no errno value names. */
enum {
	PKTSTORE_EFLOWS = -30900,  /* the flow table is full (max_flows) */
	PKTSTORE_EBROKEN = -30901, /* an earlier persist failed: the store takes
				      no more work; close and reopen it (the
				      failure's errno is in stats.broken) */
};

/* pktstore_open() flags. */
enum {
	PKTSTORE_CREATE = 1 << 0, /* create the arena file if it does not exist */
	PKTSTORE_EXCL = 1 << 1,   /* with CREATE: fail with -EEXIST if it exists */
	PKTSTORE_RDONLY = 1 << 2, /* inspect only: map read-only, change nothing on
				     the media; receiving, append and release
				     return -EROFS */
	PKTSTORE_MOVABLE = 1 << 3, /* the store may move records' bytes to free
				      sparse segments: a record's data pointer
				      stays valid only until the next receive
				      or append call (see pktstore_open(3)) */
	PKTSTORE_VERIFY = 1 << 4,  /* scrub at open: hash every record's bytes,
				      not only those a crash may have torn, so
				      damage anywhere is reported before open
				      returns (see pktstore_open(3)) */
};

/* Receive paths; PKTSTORE_PATH_AUTO picks the best one the kernel offers. */
enum pktstore_recv_path {
	PKTSTORE_PATH_AUTO = 0,
	PKTSTORE_PATH_URING_INC = 1,   /* io_uring multishot recv, incremental buffer ring */
	PKTSTORE_PATH_URING_FIXED = 2, /* io_uring multishot recv, fixed-size buffers */
	PKTSTORE_PATH_RECV = 3,        /* plain recv(2) into the arena */
	PKTSTORE_PATH_ZCRX = 4,        /* io_uring zero-copy receive: the NIC
					  writes into the arena (needs zcrx) */
};

/* Persistence granularity of the mapping (what one flush makes durable). */
enum pktstore_granularity {
	PKTSTORE_GRAN_BYTE = 0,       /* eADR platforms: stores are durable once visible */
	PKTSTORE_GRAN_CACHE_LINE = 1, /* DAX: CLWB/CLFLUSHOPT + SFENCE */
	PKTSTORE_GRAN_PAGE = 2,       /* page cache: msync(2) */
};

/*
 * Options for pktstore_open(). Zero-initialise, then set what you need; a
 * NULL pointer means "all defaults" (open an existing arena only).
 */
struct pktstore_opts {
	unsigned flags;           /* PKTSTORE_CREATE, PKTSTORE_EXCL, PKTSTORE_RDONLY */
	uint64_t size;            /* arena size when creating; default 64 MiB */
	uint32_t segment_size;    /* data segment size when creating; default 1 MiB */
	uint32_t max_flows;       /* flow table entries when creating; default 1024 */
	uint32_t bytes_per_record; /* expected mean record size, sizes the
				      descriptor log when creating; default 512 */
	enum pktstore_recv_path recv_path; /* default AUTO; the environment
					      variable PKTSTORE_RECV_PATH
					      (uring-inc, uring-fixed, recv, zcrx)
					      overrides AUTO */
	const char *zcrx;         /* "IFNAME:QUEUE": try zero-copy receive on that
				     NIC rx queue first, falling back (with the
				     reason in stats) unless recv_path is
				     PKTSTORE_PATH_ZCRX; the environment variable
				     PKTSTORE_ZCRX does the same */
	unsigned mode;            /* permission bits of a file created by
				     PKTSTORE_CREATE (umask applies); 0 means
				     0600: received bytes are private */
};

/* A record view. data points into the arena. The size of this struct is
 * fixed for the life of the ABI: new fields take reserved words. */
struct pktstore_rec {
	uint64_t id;       /* record id: never given twice, increasing */
	uint64_t flow;     /* flow id */
	uint64_t seq;      /* offset of data[0] in the flow's byte stream */
	uint64_t ts_ns;    /* receive (or append) time, CLOCK_REALTIME ns */
	const void *data;  /* the bytes, inside the arena */
	uint32_t len;      /* number of bytes */
	uint32_t crc32c;   /* CRC32C of the bytes, as persisted */
	uint32_t flags;    /* PKTSTORE_REC_* */
	int32_t status;    /* 0; on an event (PKTSTORE_REC_END or _HANGUP)
			      from pktstore_recv_persist_any(): 0 for EOF, or
			      the -errno that ended the stream */
	void *user;        /* the flow's user pointer (pktstore_flow_set_user) */
	uint64_t reserved[3]; /* zero */
};

/* pktstore_rec.flags */
enum {
	PKTSTORE_REC_APPENDED = 1 << 0, /* made by pktstore_append(), not received */
	PKTSTORE_REC_END = 1 << 1,      /* event: the flow's stream ended (status) */
	PKTSTORE_REC_HANGUP = 1 << 2,   /* event: the peer hung up while the arena
					   was full and its last bytes wait unread
					   in the socket (status -ENOBUFS); detach
					   to drop them, or release records and the
					   flow goes on to its end */
	PKTSTORE_REC_READABLE = 1 << 3, /* event: a fd given to pktstore_watch()
					   is readable (status 0), or waiting for
					   it failed (status -errno); user is the
					   watch's pointer */
	PKTSTORE_REC_WRITABLE = 1 << 4, /* event: pktstore_send() on this flow took
					   less than it was given (-EAGAIN, or a
					   short count on the recv path) and can
					   take more now; reported once per refusal */
};

/* Flow description. */
struct pktstore_flow_info {
	uint64_t id;
	uint64_t tag;          /* the application's tag given at attach/create */
	uint64_t open_ns;      /* CLOCK_REALTIME */
	uint64_t close_ns;     /* 0 while attached */
	uint64_t next_seq;     /* bytes persisted so far = seq of the next record */
	uint64_t records;      /* live records */
	int family;            /* AF_INET, AF_INET6, or 0 for a local flow */
	uint16_t local_port, peer_port; /* host byte order */
	uint8_t local_addr[16], peer_addr[16]; /* network byte order; IPv4 in the first 4 */
	unsigned state;        /* PKTSTORE_FLOW_* */
	uint32_t reserved32;   /* zero */
	uint64_t first_seq;    /* first byte still held: pktstore_trim() point */
	void *user;            /* pktstore_flow_set_user(), this session only */
	uint64_t reserved[6];  /* zero; the struct never grows */
};

enum {
	PKTSTORE_FLOW_ATTACHED = 1, /* receiving from a socket in this session */
	PKTSTORE_FLOW_CLOSED = 2,   /* detached, or from an earlier session */
	PKTSTORE_FLOW_LOCAL = 3,    /* no socket: records come from pktstore_append() */
	PKTSTORE_FLOW_EOF = 4,      /* attached, and the peer has shut down its side */
};

/* pktstore_recv_persist() / pktstore_recv_persist_any() flags */
enum {
	PKTSTORE_NONBLOCK = 1 << 0, /* return -EAGAIN instead of waiting */
};

/* pktstore_send() flags; unknown bits are refused (-EINVAL), so flags can
 * be added. */
enum {
	PKTSTORE_SEND_MORE = 1 << 0, /* more follow: the store's next receive
					call submits this send with its own
					wait, in one system call */
};

/* pktstore_get() and pktstore_readv() flags */
enum {
	PKTSTORE_NO_VERIFY = 1 << 0, /* skip the CRC32C check of the bytes */
};

/* pktstore_range() query kinds */
enum pktstore_range_kind {
	PKTSTORE_BY_SEQ = 1,  /* records of q.flow whose bytes intersect [lo, hi) */
	PKTSTORE_BY_ID = 2,   /* records with lo <= id < hi; q.flow 0 = any flow */
	PKTSTORE_BY_TIME = 3, /* records with lo <= ts_ns < hi; q.flow 0 = any flow */
	PKTSTORE_DAMAGED = 4, /* damaged records (see pktstore_get's -EBADMSG) with
				 lo <= id < hi, status -EBADMSG; q.flow 0 = any
				 flow; cost O(descriptors) per call */
};

struct pktstore_query {
	enum pktstore_range_kind kind;
	uint64_t flow;
	uint64_t lo, hi; /* half-open interval */
};

struct pktstore_stats {
	uint64_t arena_size;
	uint64_t data_bytes;        /* capacity of the data region */
	uint64_t segment_size;
	uint64_t segments, segments_free;
	uint64_t descriptors, descriptors_free;
	uint64_t flows_max, flows; /* flow table capacity, entries in use */
	uint64_t records;          /* live records */
	uint64_t record_bytes;     /* bytes held by live records */
	uint64_t records_persisted; /* made in this session */
	uint64_t bytes_persisted;   /* in this session */
	uint64_t batches;           /* drains issued for records in this session */
	uint64_t recovered_records; /* found valid at open */
	uint64_t damaged_records;   /* descriptor valid but bytes fail CRC32C */
	uint64_t invalid_descriptors; /* descriptors rejected at open (torn or corrupt) */
	uint64_t invalid_flows;     /* flow table entries rejected at open */
	uint64_t superblock_repairs; /* superblock copies found damaged or stale
					at open (rewritten unless read-only) */
	uint64_t recovery_ns;       /* time open() spent rebuilding the index */
	uint64_t enospc_events;     /* times receiving waited for free space */
	enum pktstore_granularity granularity;
	enum pktstore_recv_path recv_path; /* the active receive path */
	int dirty_shutdown;         /* 1: the previous session did not close cleanly */
	int unsafe_shutdown;        /* 1: the device reports a lost-power event too */
	char recv_path_name[16];    /* "uring-inc", "uring-fixed", "recv" or "zcrx" */
	char fallback_reason[128];  /* why a better path is not active, or "" */
	int broken;                 /* 0, or the -errno of the persist that
				       stopped the store (PKTSTORE_EBROKEN) */
	uint32_t reserved32;
	uint64_t cleaned_segments;  /* PKTSTORE_MOVABLE: segments freed by moving
				       their records, in this session */
	uint64_t moved_records, moved_bytes; /* ... what was moved */
};

/* The library's version, as PKTSTORE_VERSION encodes it. */
PKTSTORE_API unsigned pktstore_version(void);

/*
 * Open or create an arena; *out receives the store. opts_size is the size of
 * struct pktstore_opts the caller was compiled with (as openat2(2) takes its
 * how_size): fields past it count as zero, and a newer caller's extra bytes
 * must be zero or the call fails with -E2BIG. pktstore_open() passes it.
 */
PKTSTORE_API int pktstore_open_ex(const char *path, const struct pktstore_opts *opts,
				  size_t opts_size, struct pktstore **out);
static inline int pktstore_open(const char *path, const struct pktstore_opts *opts,
				struct pktstore **out)
{
	return pktstore_open_ex(path, opts, sizeof(struct pktstore_opts), out);
}
/* Mark a clean shutdown, unmap, free. The caller's sockets stay open. */
PKTSTORE_API int pktstore_close(struct pktstore *ps);

/* Adopt a connected stream socket (TCP, or AF_UNIX stream) as a new flow.
 * The caller keeps owning fd, may write replies to it, and must not read
 * from it while attached. */
PKTSTORE_API int pktstore_attach(struct pktstore *ps, int sockfd, uint64_t tag,
				 uint64_t *flow);
/* Make a flow with no socket, for pktstore_append(). */
PKTSTORE_API int pktstore_flow_create(struct pktstore *ps, uint64_t tag, uint64_t *flow);
/* Attach an application pointer to a flow (this session only, any time):
 * every record and event of the flow carries it in rec.user. */
PKTSTORE_API int pktstore_flow_set_user(struct pktstore *ps, uint64_t flow, void *user);
/* Durably drop a flow's stream below seq, even in the middle of a record:
 * records wholly below are released, a record across seq stays but reads
 * of the stream start at seq. Needs no free space. */
PKTSTORE_API int pktstore_trim(struct pktstore *ps, uint64_t flow, uint64_t seq);
/* Delete a flow that is not attached (a local flow, or a closed network
 * flow) together with its records: they are released durably first, then
 * the flow's table entry, so a crash in between leaves the flow with fewer
 * records, never records without a flow. -EBUSY while attached. */
PKTSTORE_API int pktstore_flow_delete(struct pktstore *ps, uint64_t flow);
/* Stop receiving on a flow; bytes already taken from the socket are persisted. */
PKTSTORE_API int pktstore_detach(struct pktstore *ps, uint64_t flow);
PKTSTORE_API int pktstore_flow_info(struct pktstore *ps, uint64_t flow,
				    struct pktstore_flow_info *info);
/* List flows (ascending id), starting after flow id `after` (0 = from the start). */
PKTSTORE_API int pktstore_flows(struct pktstore *ps, uint64_t after,
				struct pktstore_flow_info *out, unsigned max);

/* Receive from one flow: up to max records, each durable when returned.
 * 0 at end of stream (or for a flow no longer attached); -errno if the
 * stream ended in an error; -ENOSPC when the arena is full until records are
 * released; -EINTR when a signal interrupts the wait. */
PKTSTORE_API int pktstore_recv_persist(struct pktstore *ps, uint64_t flow,
				       struct pktstore_rec *recs, unsigned max, unsigned flags);
/* Receive from every attached flow; records of one flow come in seq order.
 * A flow whose stream ended is reported once, after its last record, as an
 * event: a record with id 0, len 0, data NULL and status 0 (EOF) or -errno.
 * Watched fds come as events too (pktstore_watch). Returns 0 when no flow
 * is still receiving, no fd is watched and nothing is pending; a wait
 * interrupted by a signal returns -EINTR. */
PKTSTORE_API int pktstore_recv_persist_any(struct pktstore *ps, struct pktstore_rec *recs,
					   unsigned max, unsigned flags);
/* Also wait for fd (a listening socket, a timerfd, an eventfd...) to be
 * readable: while it is, pktstore_recv_persist_any() hands out an event
 * record (PKTSTORE_REC_READABLE, rec.user = user), once per call, and a
 * blocking call waits for it with the flows. A server that drives the store
 * itself so waits for everything in one system call. */
PKTSTORE_API int pktstore_watch(struct pktstore *ps, int fd, void *user);
/* Stop watching fd; no event for it follows. */
PKTSTORE_API int pktstore_unwatch(struct pktstore *ps, int fd);
/* A file descriptor that becomes readable when pktstore_recv_persist_any()
 * may have work. It must only be treated as a hint to call in. */
PKTSTORE_API int pktstore_fd(struct pktstore *ps);
/* Send bytes to an attached flow's peer (an acknowledgement, a reply). On
 * the io_uring paths they are sent through the store's ring, in order with
 * earlier sends on the flow (copied, or, for large pieces of the arena,
 * sent from it with their segment held until sent); with
 * PKTSTORE_SEND_MORE the next receive call submits them. Returns the bytes taken (all of them, but on
 * the recv path from a non-blocking socket, as sendmsg(2)), or -errno
 * (-EAGAIN: too much waits unsent; an error of an earlier send). */
PKTSTORE_API int pktstore_send(struct pktstore *ps, uint64_t flow, const struct iovec *iov,
			       unsigned iovcnt, unsigned flags);

/* Persist application bytes as a record of a local flow. */
PKTSTORE_API int pktstore_append(struct pktstore *ps, uint64_t flow, const void *data,
				 uint32_t len, struct pktstore_rec *rec);

PKTSTORE_API int pktstore_get(struct pktstore *ps, uint64_t id, struct pktstore_rec *rec,
			      unsigned flags);
/* Copy up to len bytes of a flow's stream from seq, across records; returns
 * the bytes copied (fewer at the end of what is held, or at a gap). */
PKTSTORE_API int pktstore_read(struct pktstore *ps, uint64_t flow, uint64_t seq, void *buf,
			       size_t len);
/* The same without copying: up to iovcnt iovecs pointing into the arena,
 * covering up to len bytes from seq; returns the number of iovecs filled.
 * The bytes are checked against their CRC32C unless PKTSTORE_NO_VERIFY. */
PKTSTORE_API int pktstore_readv(struct pktstore *ps, uint64_t flow, uint64_t seq, size_t len,
				struct iovec *iov, int iovcnt, unsigned flags);
PKTSTORE_API int pktstore_range(struct pktstore *ps, const struct pktstore_query *q,
				struct pktstore_rec *out, unsigned max);
/* Free a record: readers no longer see it at once; the release is durable,
 * and its space free, once the store next commits (see pktstore_sync()):
 * until then a crash may bring the record back. */
PKTSTORE_API int pktstore_release(struct pktstore *ps, uint64_t id);
/* Release n records; all or nothing: if any id names no record, nothing is
 * released (-ENOENT). */
PKTSTORE_API int pktstore_release_batch(struct pktstore *ps, const uint64_t *ids, unsigned n);
/* Commit now: every release made so far is durable and its space free when
 * this returns 0. The calls that receive or append records, and
 * flow_delete, detach and close, commit on their way too (trim does not:
 * its trim point is durable at once, its releases at the next commit). */
PKTSTORE_API int pktstore_sync(struct pktstore *ps);

/* Fill the first st_size bytes of *st (the size the caller was compiled
 * with; pktstore_stats() passes it): a struct that grows stays compatible. */
PKTSTORE_API int pktstore_stats_ex(struct pktstore *ps, struct pktstore_stats *st,
				   size_t st_size);
static inline int pktstore_stats(struct pktstore *ps, struct pktstore_stats *st)
{
	return pktstore_stats_ex(ps, st, sizeof(struct pktstore_stats));
}
PKTSTORE_API const char *pktstore_strerror(int err);

/* CRC32C (Castagnoli) as stored in records: crc = pktstore_crc32c(0, buf, len). */
PKTSTORE_API uint32_t pktstore_crc32c(uint32_t crc, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* PKTSTORE_H */
