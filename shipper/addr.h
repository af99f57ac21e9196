/* Listen addresses: host:port, [v6]:port or unix:///path. */
#ifndef SP_ADDR_H
#define SP_ADDR_H

#include <sys/socket.h>

typedef struct {
    int is_unix;
    char path[108];             /* unix socket path */
    struct sockaddr_storage sa; /* TCP address */
} sp_addr;

/** Parses `s`; 0, or -1 with a reason in `why` (a static string). */
int sp_addr_parse(const char *s, sp_addr *a, const char **why);

#endif
