/* shipper-bench entry point: subcommand dispatch (helpers are in bench_util.c). */
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fputs("usage: shipper-bench forward [--addr HOST:PORT|unix:///PATH] "
          "[--mode message|forward|packed|compressed]\n"
          "                             [--records N] [--size BYTES] [--conns C] [--batch B]\n"
          "                             [--ack] [--window W] [--ack-timeout SEC] [--eventtime] "
          "[--json]\n"
          "                             [--tag T] [--containers K] [--stamp-file FILE] "
          "[--quiet] [--progress]\n"
          "       shipper-bench jsonfile --out FILE [--records N] [--size BYTES]\n"
          "                              [--partial-every K] [--partial-size BYTES] [--append]\n"
          "                              [--quiet] [--progress]\n"
          "       shipper-bench pingpong [--spin] [--count N] [--size BYTES]\n"
          "Counts accept k/m/g (x1000) suffixes. See bench/README.md.\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "forward") == 0) return bench_forward_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "jsonfile") == 0) return bench_jsonfile_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "pingpong") == 0) return bench_pingpong_main(argc - 1, argv + 1);
    fprintf(stderr, "shipper-bench: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
