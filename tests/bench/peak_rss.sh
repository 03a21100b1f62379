#!/bin/sh
# peak_rss.sh PREFIX CMD...: run CMD (one MPI rank) under /usr/bin/time -v's peak-RSS counter,
# writing "rss_kb N" into PREFIX.RANK (RANK from Open MPI's OMPI_COMM_WORLD_RANK).
p=$1
shift
exec /usr/bin/time -f "rss_kb %M" -o "$p.${OMPI_COMM_WORLD_RANK:-0}" "$@"
