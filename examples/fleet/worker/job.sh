#!/bin/sh
# The example batch job: report what it ran on and exit.
set -eu
echo "worker on $(hostname): $(. /etc/os-release; echo "$PRETTY_NAME")"
