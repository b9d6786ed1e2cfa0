"""Tests of the FETCH fast path's memo (the items themselves: test_parser, test_parser_fuzz)."""

from __future__ import annotations

from mailwire.protocols.imap.fetch import FetchMemo
from mailwire.protocols.imap.responses import Address


def test_memo_keeps_short_values_only_and_stays_bounded() -> None:
    memo = FetchMemo()
    one = b'(("A" NIL "a" "x.org"))'
    assert memo.address_tuple(one) == (Address(b"A", None, b"a", b"x.org"),)
    assert memo.address_tuple(one) is memo.address_tuple(one)
    huge = b"(" + b'(NIL NIL "a" "b")' * 1000 + b")"
    assert len(memo.address_tuple(huge)) == 1000
    assert huge not in memo.addresses  # a hostile server's long lists are not kept
    for n in range(5000):
        memo.flag_tuple(b"$k%d" % n)
    assert 0 < len(memo.flags) <= 4096
    assert memo.flag_tuple(b"\\Seen nil $X") == ("\\Seen", "NIL", "$X")
    assert memo.flag_tuple(b"") == ()
