#!/bin/sh
# Run the live tests (tests/live/test_*.py, or the files given) with pytest
# against the built echod; with ECHOD_LIVE_TESTS set (file names, space-
# separated), only those of tests/live.
# Debian's python3-pytest lives under /usr/bin/python3, which may not be the
# first python3 on PATH.
dir=${TESTS_SRCDIR:-$(dirname "$0")}
for py in /usr/bin/python3 python3; do
	if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import pytest' 2>/dev/null; then
		if [ "$#" -eq 0 ] && [ -n "${ECHOD_LIVE_TESTS:-}" ]; then
			set -f		# names, not patterns
			for t in $ECHOD_LIVE_TESTS; do
				set -- "$@" "$dir/$t"
			done
			set +f
			echo "live.sh: only $ECHOD_LIVE_TESTS (ECHOD_LIVE_TESTS)" >&2
		fi
		[ "$#" -gt 0 ] || set -- "$dir"
		exec "$py" -m pytest -q -p no:cacheprovider "$@"
	fi
done
echo "live.sh: pytest not found (apt-get install python3-pytest)" >&2
# 77 tells automake 'skipped'; in CI a skipped suite is a failure (99).
[ -n "$CI" ] && exit 99
exit 77
