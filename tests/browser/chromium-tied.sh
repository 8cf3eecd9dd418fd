#!/bin/sh
# Chromium for the browser tests, tied to the node process that launches it:
# playwright starts the browser in a session of its own (outside the test's
# process group), so the kernel's parent-death signal is what kills it when
# the test process dies. Chromium's own helper processes exit with it.
exec setpriv --pdeathsig KILL -- "${SHARDLINE_CHROMIUM:-/usr/bin/chromium}" "$@"
