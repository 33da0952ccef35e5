#!/usr/bin/env bash
# The fault runs of the reliability suite alone (kill -9 of a worker, SIGSTOP
# of a worker, gateway kill -9 and restart, misbehaving nodes, a client
# leaving a stream): scripts/reliability.sh --faults-only. Needs what
# scripts/reliability.sh needs; takes about 2-3 minutes after the build.
#
#   scripts/faults.sh [--no-docs]
set -euo pipefail
exec "$(dirname "$0")/reliability.sh" --faults-only "$@"
