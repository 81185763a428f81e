"""Shared pieces of the hostile-input and hostile-hub tests: the RSS
and "never lost" checks every test there repeats.

(The raw hub these tests script lives in faultserver.py now:
FaultServer(script=...), started with the fault fixture.)
"""

import os
import re

# Peak RSS a hostile input may cost (the brief: "under ~16 MiB").
RSS_LIMIT_KIB = 16 * 1024

EHLO_PLAIN = (b"250-raw.test\r\n250-8BITMIME\r\n250-SIZE\r\n"
              b"250 ENHANCEDSTATUSCODES\r\n")


def check_rss(res, asan, what):
    """Peak RSS of the postino run stayed bounded (skipped under ASan)."""
    if asan:
        return
    assert res.maxrss_kib is not None, "run with measure_rss=True"
    assert res.maxrss_kib < RSS_LIMIT_KIB, (
        "%s: peak RSS %d KiB (limit %d KiB)" % (what, res.maxrss_kib,
                                                RSS_LIMIT_KIB))


def not_a_signal(res):
    """Negative return codes are deaths by signal (a crash, ASan abort
    exits 1 and prints to stderr, which other checks see)."""
    assert res.rc >= 0, "postino died of signal %d\n%s" % (-res.rc,
                                                            res.describe())


def queued_ids(postino, area="queue"):
    d = os.path.join(postino.queue_dir, area)
    if not os.path.isdir(d):
        return []
    return sorted(n for n in os.listdir(d) if not n.startswith("."))


def sanitised(text):
    """No terminal control, no bare CR, no DEL in text meant for humans."""
    bad = re.findall(r"[\x00-\x08\x0b-\x1f\x7f]", text)
    return not bad
