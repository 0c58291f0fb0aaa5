/* SPDX-License-Identifier: MIT */
/* kill -9 of a writer mid-stream: after reopen every acknowledged byte is
 * there, in order, intact, and nothing torn is served.
 *
 * The writer is a child process that receives through the store and, like a
 * server, acknowledges to the sender (here over a pipe) the stream offset up
 * to which recv_persist returned records. The parent streams bytes, kills
 * the child at a random moment, then reopens the arena and checks.
 * PKTSTORE_CRASH_ROUNDS sets the number of kills (default 6); the seed is
 * printed so a failure can be replayed with PKTSTORE_CRASH_SEED. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

static void writer(const char *path, int lfd, int ackfd, enum pktstore_recv_path rp)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 64 << 20, .recv_path = rp };
	struct pktstore *ps;
	struct pktstore_rec r[64];
	uint64_t flow;
	int s;

	if (pktstore_open(path, &o, &ps))
		_exit(2);
	s = accept(lfd, NULL, NULL);
	if (s < 0 || pktstore_attach(ps, s, 0, &flow))
		_exit(3);
	if (write(ackfd, &flow, sizeof(flow)) != sizeof(flow))
		_exit(4);
	for (;;) {
		int n = pktstore_recv_persist(ps, flow, r, 64, 0);

		if (n == -ENOSPC) {
			/* Keep the test about crashes: free the oldest half. */
			struct pktstore_query q = { .kind = PKTSTORE_BY_SEQ, .flow = flow,
						    .hi = UINT64_MAX };
			struct pktstore_rec old[256];
			int k = pktstore_range(ps, &q, old, 256);

			for (int i = 0; i < k / 2; i++)
				pktstore_release(ps, old[i].id);
			continue;
		}
		if (n <= 0)
			_exit(n == 0 ? 0 : 5);
		uint64_t acked = r[n - 1].seq + r[n - 1].len;

		if (write(ackfd, &acked, sizeof(acked)) != sizeof(acked))
			_exit(6);
	}
}

struct stream_sender {
	int fd;
	uint64_t stream;
	atomic_int stop;
	uint64_t sent;
};

/* Sends until told to stop or the peer dies; errors are the point here. */
static void *send_until_stopped(void *arg)
{
	struct stream_sender *s = arg;
	uint8_t buf[8192];
	unsigned seed = (unsigned)s->stream;

	while (!atomic_load(&s->stop)) {
		size_t n = 1 + (size_t)rand_r(&seed) % sizeof(buf);

		fill_stream(s->stream, s->sent, buf, n);
		ssize_t w = send(s->fd, buf, n, MSG_NOSIGNAL);

		if (w <= 0)
			break;
		s->sent += (uint64_t)w;
	}
	return NULL;
}

static void one_crash(const char *path, unsigned seed, enum pktstore_recv_path rp, int round)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ack[2];

	cr_assert(lfd >= 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(lfd, 1), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
	cr_assert_eq(pipe(ack), 0);

	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		close(ack[0]);
		writer(path, lfd, ack[1], rp);
	}
	close(ack[1]);
	close(lfd);

	struct stream_sender snd = { .fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) };

	cr_assert_eq(connect(snd.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	uint64_t flow = 0, acked = 0, v;

	cr_assert_eq(read(ack[0], &flow, sizeof(flow)), (ssize_t)sizeof(flow), "writer started");
	snd.stream = flow;
	pthread_t th;

	cr_assert_eq(pthread_create(&th, NULL, send_until_stopped, &snd), 0);

	/* Once the first ack is in, let it run 0..80 ms more, then kill it
	 * mid-stream. */
	struct timespec t0, now;
	long run_ms = (long)(rand_r(&seed) % 81);

	cr_assert_eq(read(ack[0], &acked, sizeof(acked)), (ssize_t)sizeof(acked), "first ack");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { .fd = ack[0], .events = POLLIN };

		poll(&p, 1, 1);
		if (p.revents & POLLIN && read(ack[0], &v, sizeof(v)) == sizeof(v))
			acked = v;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >= run_ms)
			break;
	}
	kill(pid, SIGKILL);
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status), "the writer died of the kill, not by itself (%d)", status);
	/* Acks written before the kill are acknowledged too. */
	while (read(ack[0], &v, sizeof(v)) == sizeof(v))
		acked = v;
	close(ack[0]);
	atomic_store(&snd.stop, 1);
	shutdown(snd.fd, SHUT_RDWR);
	pthread_join(th, NULL);
	close(snd.fd);

	struct pktstore *ps = store_open(path, 0, PKTSTORE_PATH_AUTO);
	struct pktstore_stats st;
	struct pktstore_query q = { .kind = PKTSTORE_BY_SEQ, .flow = flow, .hi = UINT64_MAX };
	struct pktstore_rec out[256];
	uint64_t seq = 0, first = UINT64_MAX;
	int n;

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.dirty_shutdown, 1, "round %d", round);
	cr_assert_eq(st.damaged_records, 0, "round %d: torn record", round);
	while ((n = pktstore_range(ps, &q, out, 256)) > 0) {
		for (int i = 0; i < n; i++) {
			if (first == UINT64_MAX)
				seq = first = out[i].seq; /* the prefix may be released */
			cr_assert_eq(out[i].seq, seq, "round %d: gap at %lu", round,
				     (unsigned long)seq);
			cr_assert(check_stream(flow, seq, out[i].data, out[i].len),
				  "round %d: bytes at seq %lu differ", round, (unsigned long)seq);
			seq += out[i].len;
		}
		q.lo = seq;
	}
	cr_assert_geq(seq, acked, "round %d: acknowledged %lu, recovered up to %lu", round,
		      (unsigned long)acked, (unsigned long)seq);
	cr_assert_leq(seq, snd.sent, "round %d: more than was sent", round);
	cr_log_info("round %d (%s): sent %lu acked %lu recovered %lu", round,
		    rp == PKTSTORE_PATH_RECV ? "recv" : "uring", (unsigned long)snd.sent,
		    (unsigned long)acked, (unsigned long)seq);
	/* Free the round's records so later rounds have room; this is the
	 * release path on a recovered arena too. */
	q.lo = 0;
	while ((n = pktstore_range(ps, &q, out, 256)) > 0)
		for (int i = 0; i < n; i++)
			cr_assert_eq(pktstore_release(ps, out[i].id), 0);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(crash, kill_writer_mid_stream)
{
	char path[256];
	const char *e = getenv("PKTSTORE_CRASH_ROUNDS");
	int rounds = e ? atoi(e) : 6;
	unsigned seed = getenv("PKTSTORE_CRASH_SEED") ? (unsigned)atoi(getenv("PKTSTORE_CRASH_SEED"))
						      : (unsigned)time(NULL);

	fprintf(stderr, "crash seed %u (replay with PKTSTORE_CRASH_SEED=%u)\n", seed, seed);
	arena_path(MEDIUM_TMPFS, "crash", path, sizeof(path));
	for (int round = 0; round < rounds; round++)
		one_crash(path, seed + (unsigned)round,
			  round % 3 == 2 ? PKTSTORE_PATH_RECV : PKTSTORE_PATH_AUTO, round);
	unlink(path);
}
