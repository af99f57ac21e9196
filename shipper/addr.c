/* Address parsing shared by the forward listener, the HTTP server and the CLI. */
#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

int sp_addr_parse(const char *s, sp_addr *a, const char **why)
{
    memset(a, 0, sizeof *a);
    if (strncmp(s, "unix://", 7) == 0) {
        const char *p = s + 7;
        if (*p != '/') {
            *why = "a unix socket path must be absolute (unix:///path.sock)";
            return -1;
        }
        if (strlen(p) >= sizeof a->path) {
            *why = "unix socket path too long";
            return -1;
        }
        a->is_unix = 1;
        strcpy(a->path, p);
        return 0;
    }
    char host[256];
    const char *port;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof host) {
            *why = "expected [ipv6]:port";
            return -1;
        }
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host) {
            *why = "expected host:port, [ipv6]:port or unix:///path";
            return -1;
        }
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    char *end;
    long pn = strtol(port, &end, 10);
    if (*port == '\0' || *end || pn < 0 || pn > 65535) {
        *why = "bad port";
        return -1;
    }
    if (strcmp(host, "localhost") == 0 || host[0] == '\0') strcpy(host, "127.0.0.1");
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a->sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->sa;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)pn);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)pn);
        return 0;
    }
    *why = "host must be an IP address (or localhost)";
    return -1;
}
