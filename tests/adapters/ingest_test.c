/* SPDX-License-Identifier: MIT */
/*
 * Drives one adapter example (examples/adapters/ingest-*) through the
 * scenario that breaks brokers built on a store: many clients, a tiny
 * arena, idle clients holding unfinished messages until it is full, then
 * those clients hanging up while it is full. The server must not spin (its
 * loop calls in only a few times while full), must close every socket the
 * peers closed (no CLOSE_WAIT left), and must take new messages afterwards,
 * all without anything but the hang-ups to free space.
 * usage: ingest_test SERVER_BINARY        (a plain program: bounded, prints why)
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NORMAL 8
#define MESSAGES 40
#define HOLDERS 24
#define HELD (50u * 1024)
#define OVERSIZED 20

static pid_t server;
static FILE *server_out;
static unsigned port;
static char arena[128];
static const char *stage = "starting the server"; /* what a timeout was waiting for */

static void fail(const char *why)
{
	fprintf(stderr, "ingest_test: FAIL: %s\n", why);
	if (server > 0)
		kill(server, SIGKILL);
	unlink(arena);
	exit(1);
}

static void on_alarm(int sig)
{
	static char why[200];

	(void)sig;
	snprintf(why, sizeof(why),
		 "timed out: a call blocked (the server stopped reading or answering) while %s", stage);
	fail(why);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_client(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		fail("connect");
	return fd;
}

/* Counters of the server, asked for with SIGUSR1. */
struct counters {
	unsigned long messages, closed, fulls, drains;
};

static struct counters ask(void)
{
	struct counters c;
	char line[256];
	const char *was = stage;

	stage = "waiting for the counters asked for with SIGUSR1";
	kill(server, SIGUSR1);
	if (!fgets(line, sizeof(line), server_out) ||
	    sscanf(line, "messages %lu closed %lu fulls %lu drains %lu", &c.messages, &c.closed,
		   &c.fulls, &c.drains) != 4)
		fail("no counters from the server");
	stage = was;
	return c;
}

/* Sockets of the server's port in CLOSE_WAIT: peers gone, not closed here. */
static int close_waits(void)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned lport, st;

		if (sscanf(line, " %*d: %*x:%x %*x:%*x %x", &lport, &st) == 2 && lport == port &&
		    st == 0x08)
			n++;
	}
	fclose(f);
	return n;
}

static void send_message(int fd, uint32_t len, uint64_t *pos)
{
	static char payload[4096];
	uint32_t be = htonl(len);

	if (send(fd, &be, 4, MSG_NOSIGNAL) != 4 || send(fd, payload, len, MSG_NOSIGNAL) != len)
		fail("send");
	*pos += 4 + len;
}

/* Read acknowledgements until one says `want`. */
static void await_ack(int fd, uint64_t want, double deadline)
{
	uint64_t ack = 0;

	while (ack != want) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (now() > deadline)
			fail("acknowledgements stopped");
		if (poll(&p, 1, 200) <= 0)
			continue;
		uint64_t be;
		ssize_t n = recv(fd, &be, 8, MSG_WAITALL);

		if (n != 8)
			fail("acknowledgement stream ended");
		ack = be64toh(be);
		if (ack > want)
			fail("acknowledged more than was sent");
	}
}

static void traffic(int clients, unsigned seed)
{
	int fd[NORMAL];
	uint64_t pos[NORMAL] = { 0 };
	double deadline = now() + 30;

	for (int i = 0; i < clients; i++)
		fd[i] = connect_client();
	for (int m = 0; m < MESSAGES; m++)
		for (int i = 0; i < clients; i++)
			send_message(fd[i], 1 + (uint32_t)rand_r(&seed) % 4000, &pos[i]);
	for (int i = 0; i < clients; i++) {
		await_ack(fd[i], pos[i], deadline);
		close(fd[i]);
	}
}

int main(int argc, char **argv)
{
	int out[2];
	const char *dir = getenv("PKTSTORE_TEST_PM_DIR"); /* as tests/util.c */

	if (argc != 2) {
		fprintf(stderr, "usage: ingest_test SERVER_BINARY\n");
		return 2;
	}
	signal(SIGALRM, on_alarm);
	alarm(60);
	snprintf(arena, sizeof(arena), "%s/pktstore-ingest-%d.arena", dir && *dir ? dir : "/dev/shm",
		 (int)getpid());
	unlink(arena);
	if (pipe(out))
		fail("pipe");
	server = fork();
	if (server == 0) {
		dup2(out[1], 1);
		execl(argv[1], argv[1], arena, "0", "1048576", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	server_out = fdopen(out[0], "r");
	char first[128];

	/* A line at a time: a scanf format's newline would wait for more. */
	if (!server_out || !fgets(first, sizeof(first), server_out) ||
	    sscanf(first, "listening on %u", &port) != 1)
		fail("the server did not start");

	/* Plain traffic: every message acknowledged, the flows trimmed. */
	stage = "sending messages and reading their acknowledgements";
	traffic(NORMAL, 1);
	struct counters c0 = ask();

	if (c0.messages != NORMAL * MESSAGES)
		fail("not every message was counted");

	/* Holders: unfinished messages that fill the arena. */
	stage = "filling the arena";
	int hold[HOLDERS];
	static char bulk[HELD];

	for (int i = 0; i < HOLDERS; i++) {
		uint32_t be = htonl(HELD + 1000);

		hold[i] = connect_client();
		if (send(hold[i], &be, 4, MSG_NOSIGNAL) != 4)
			fail("send");
		/* Whatever TCP takes without blocking. */
		if (send(hold[i], bulk, sizeof(bulk), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
		    errno != EAGAIN)
			fail("send");
	}
	struct counters c1;
	double deadline = now() + 15;

	do {
		usleep(200000);
		c1 = ask();
		if (now() > deadline)
			fail("the arena never filled up");
	} while (!c1.fulls);
	usleep(300000);
	c1 = ask();
	sleep(1);
	struct counters c2 = ask();

	printf("ingest_test: full: %lu drains in 1 s\n", c2.drains - c1.drains);
	if (c2.drains - c1.drains > 10)
		fail("the loop keeps calling in while the arena is full (a busy loop)");

	/* They hang up while it is full: every socket must be closed here. */
	stage = "waiting for the hung-up sockets to be closed";
	for (int i = 0; i < HOLDERS; i++)
		close(hold[i]);
	deadline = now() + 15;
	for (;;) {
		struct counters c = ask();

		if (c.closed >= NORMAL + HOLDERS && !close_waits())
			break;
		if (now() > deadline) {
			fprintf(stderr, "closed %lu of %d, %d in CLOSE_WAIT\n", c.closed,
				NORMAL + HOLDERS, close_waits());
			fail("clients that hung up while the arena was full were not closed");
		}
		usleep(100000);
	}

	/* And the server goes on. */
	stage = "sending messages after the hang-ups";
	traffic(2, 7);
	struct counters c3 = ask();

	if (c3.messages != c0.messages + 2 * MESSAGES)
		fail("new messages after the hang-ups were not all taken");
	/* Those two hung up as well: once both are closed the server has
	 * nothing left to do, and only the signal below can wake it. */
	stage = "waiting for the last two sockets to be closed";
	deadline = now() + 15;
	while (c3.closed < NORMAL + HOLDERS + 2) {
		if (now() > deadline)
			fail("the last two clients' hang-ups were not closed");
		usleep(100000);
		c3 = ask();
	}
	/* Clients that announce a message over the limit and hang up at once:
	 * the server closes each when it reads the length, while the end of
	 * the same stream may already wait in the same batch of records. */
	stage = "closing clients that announced oversized messages";
	for (int i = 0; i < OVERSIZED; i++) {
		int fd = connect_client();
		char msg[104] = { 0x7f, 0xff, 0xff, 0xff }; /* and 100 bytes */

		/* One send: the server may close before a second one. */
		if (send(fd, msg, sizeof(msg), MSG_NOSIGNAL) != sizeof(msg))
			fail("send");
		close(fd);
	}
	deadline = now() + 15;
	while (c3.closed < NORMAL + HOLDERS + 2 + OVERSIZED) {
		if (now() > deadline)
			fail("clients with oversized messages were not closed");
		usleep(100000);
		c3 = ask();
	}
	if (c3.closed != NORMAL + HOLDERS + 2 + OVERSIZED)
		fail("a connection was closed twice");
	/* Stop it 10 ms after its last answer: an idle loop is back in its
	 * wait by then, and under tests/adapters/slow_loop.c it is in the 20 ms
	 * before the wait, where a loop that waits with the signal unblocked
	 * loses it. */
	usleep(10000);
	stage = "waiting for the server to end after SIGTERM";
	kill(server, SIGTERM);
	int status;

	if (waitpid(server, &status, 0) != server || !WIFEXITED(status) || WEXITSTATUS(status))
		fail("the server did not end cleanly");
	unlink(arena);
	printf("ingest_test: %s: ok (%lu messages, %lu connections closed)\n", argv[1],
	       c3.messages, c3.closed);
	return 0;
}
