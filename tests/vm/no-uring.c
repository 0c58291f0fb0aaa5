/* SPDX-License-Identifier: MIT */
/*
 * no-uring [--errno=EPERM|ENOSYS] COMMAND [ARG...]
 *
 * Run COMMAND with io_uring refused, the way Docker's default seccomp
 * profile refuses it: io_uring_setup, io_uring_enter and io_uring_register
 * fail with EPERM (or ENOSYS), for COMMAND and everything it starts. On
 * kernels without kernel.io_uring_disabled (before 6.6) this is how the
 * recv(2) fallback is exercised. Every other system call is allowed.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error "no-uring: add this architecture's AUDIT_ARCH_"
#endif

int main(int argc, char **argv)
{
	unsigned err = EPERM;
	int i = 1;

	if (argc > 1 && strncmp(argv[1], "--errno=", 8) == 0) {
		if (strcmp(argv[1] + 8, "ENOSYS") == 0)
			err = ENOSYS;
		else if (strcmp(argv[1] + 8, "EPERM") != 0) {
			fprintf(stderr, "no-uring: --errno takes EPERM or ENOSYS\n");
			return 2;
		}
		i++;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: no-uring [--errno=EPERM|ENOSYS] COMMAND [ARG...]\n");
		return 2;
	}

	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), /* another ABI: not ours to judge */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		perror("no-uring: prctl(PR_SET_NO_NEW_PRIVS)");
		return 126;
	}
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
		perror("no-uring: prctl(PR_SET_SECCOMP)");
		return 126;
	}
	/* The filter holds: say so only if it really refuses. */
	if (syscall(__NR_io_uring_setup, 1, NULL) != -1 || errno != (int)err) {
		fprintf(stderr, "no-uring: io_uring_setup was not refused (%s)\n", strerror(errno));
		return 126;
	}
	execvp(argv[i], argv + i);
	fprintf(stderr, "no-uring: %s: %s\n", argv[i], strerror(errno));
	return 127;
}
