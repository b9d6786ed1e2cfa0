"""Web-safe message HTML: sanitiser attack cases, email HTML kept, plain text, cid: embedding."""

from __future__ import annotations

import base64
import re

import pytest

from mailwire.services.html import (
    MAX_EMBEDDED_IMAGE_BYTES,
    MAX_EMBEDDED_TOTAL_BYTES,
    MAX_LINK_CHARS,
    MAX_STYLE_CHARS,
    embed_images,
    embeddable_parts,
    plain_to_html,
    referenced_content_ids,
    sanitise,
)

# Markers that must never survive sanitising, whatever the input.
_ACTIVE = re.compile(
    r"<script|<svg|<math|<iframe|<object|<embed|<form|<input|<meta|<base|<style|<link"
    r"|\son\w+\s*=|javascript:|vbscript:|data:text|expression\(|url\(",
    re.I,
)

ATTACKS = {
    "script tag": "<p>hi</p><script>alert(1)</script>",
    "script mixed case": "<ScRiPt>alert(1)</sCrIpT><p>hi</p>",
    "onerror": '<img src="https://e.example/a.png" onerror="alert(1)"><p>hi</p>',
    "onerror mixed case": "<ImG SrC=x OnErRoR=alert(1)><p>hi</p>",
    "onclick on div": '<div onclick="alert(1)" onmouseover="alert(2)">hi</div>',
    "javascript href": '<a href="javascript:alert(1)">hi</a>',
    "javascript href upper": '<a HREF="JAVASCRIPT:alert(1)">hi</a>',
    "javascript src": '<img src="javascript:alert(1)"><p>hi</p>',
    "entity-encoded javascript": '<a href="&#106;&#97;vascript&#58;alert(1)">hi</a>',
    "hex entity javascript": '<a href="&#x6A;avascript:alert(1)">hi</a>',
    "tab in scheme": '<a href="java&#x09;script:alert(1)">hi</a>',
    "vbscript": '<a href="vbscript:msgbox(1)">hi</a>',
    "svg with script": "<svg><script>alert(1)</script><circle r=1 /></svg><p>hi</p>",
    "svg onload": '<svg onload="alert(1)"></svg><p>hi</p>',
    "math href": '<math><mi xlink:href="javascript:alert(1)">x</mi></math><p>hi</p>',
    "style expression": '<p style="width: expression(alert(1))">hi</p>',
    "style url javascript": '<p style="background: url(javascript:alert(1))">hi</p>',
    "style url remote": '<p style="background-image: url(https://t.example/px)">hi</p>',
    "style escaped url": '<p style="color: red; background: u\\72l(javascript:alert(1))">hi</p>',
    "style block": "<style>body{background:url(javascript:alert(1))}</style><p>hi</p>",
    "link stylesheet": '<link rel="stylesheet" href="https://e.example/x.css"><p>hi</p>',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)"><p>hi</p>',
    "base href": '<base href="javascript:alert(1)//"><p>hi</p>',
    "form": '<form action="https://e.example/steal"><input name="pw"><p>hi</p></form>',
    "iframe": '<iframe src="https://e.example/"></iframe><p>hi</p>',
    "iframe srcdoc": '<iframe srcdoc="<script>alert(1)</script>"></iframe><p>hi</p>',
    "object": '<object data="https://e.example/x.swf"></object><p>hi</p>',
    "embed": '<embed src="https://e.example/x.swf"><p>hi</p>',
    "data text/html link": '<a href="data:text/html;base64,PHNjcmlwdD4=">hi</a>',
    "data text/html img": '<img src="data:text/html,<script>alert(1)</script>"><p>hi</p>',
    "conditional comment": "<!--[if gte mso 9]><script>alert(1)</script><![endif]--><p>hi</p>",
    "template": "<template><script>alert(1)</script></template><p>hi</p>",
    "noscript breakout": (
        '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript><p>hi</p>'
    ),
}


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_attack_is_stripped_and_text_kept(attack: str) -> None:
    cleaned = sanitise(attack)
    assert not _ACTIVE.search(cleaned), cleaned
    assert "hi" in cleaned


def test_sanitised_html_stays_safe_on_a_second_pass() -> None:
    for attack in ATTACKS.values():
        twice = sanitise(sanitise(attack))
        assert not _ACTIVE.search(twice)
        assert "hi" in twice


def test_style_keeps_safe_declarations_only() -> None:
    cleaned = sanitise(
        '<p style="color: #333; font-size: 14px; position: fixed; z-index: 9;'
        ' top: 0; margin: -400px; padding: 4px">t</p>'
    )
    assert "color" in cleaned
    assert "font-size" in cleaned
    assert "padding" in cleaned
    for gone in ("position", "z-index", "top", "-400px"):
        assert gone not in cleaned


def test_style_over_its_limit_is_dropped_whole() -> None:
    long_style = "color: red;" * (MAX_STYLE_CHARS // 10 + 1)
    assert "style" not in sanitise(f'<p style="{long_style}">t</p>')


def test_email_html_is_kept() -> None:
    pixel = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    message = (
        "<html><head><title>Newsletter</title></head><body>"
        '<table width="600" cellpadding="4" border="0"><tbody><tr>'
        '<td bgcolor="#eeeeee" align="center" colspan="2">'
        '<font color="#ff0000" face="Arial">Sale</font></td></tr>'
        f'<tr><td><img src="{pixel}" alt="logo" width="10" height="10"></td>'
        '<td><a href="https://shop.example/item?id=1&amp;ref=mail">Buy</a>'
        ' or <a href="mailto:sales@shop.example">write</a></td></tr></tbody></table>'
        "<blockquote>quoted</blockquote><ul><li>one</li></ul><p><b>bold</b> <i>it</i></p>"
        "</body></html>"
    )
    cleaned = sanitise(message)
    for kept in (
        '<table width="600" cellpadding="4" border="0">',
        '<td bgcolor="#eeeeee" align="center" colspan="2">',
        '<font color="#ff0000" face="Arial">Sale</font>',
        f'<img src="{pixel}" alt="logo" width="10" height="10">',
        'href="https://shop.example/item?id=1&amp;ref=mail"',
        'href="mailto:sales@shop.example"',
        "<blockquote>quoted</blockquote>",
        "<li>one</li>",
        "<b>bold</b>",
    ):
        assert kept in cleaned
    assert "Newsletter" not in cleaned


def test_links_open_apart_from_the_host_page() -> None:
    cleaned = sanitise('<a href="https://e.example/" target="_self" rel="opener">x</a>')
    assert cleaned == (
        '<a href="https://e.example/" target="_blank" rel="noopener noreferrer">x</a>'
    )


def test_relative_urls_are_removed_and_cid_is_kept() -> None:
    cleaned = sanitise('<img src="/account/delete"><img src="cid:logo@e.example">')
    assert cleaned == '<img><img src="cid:logo@e.example">'


def test_svg_data_image_is_not_a_safe_image() -> None:
    svg = base64.b64encode(b"<svg onload='alert(1)'/>").decode()
    assert sanitise(f'<img src="data:image/svg+xml;base64,{svg}">') == "<img>"


def test_class_and_id_are_removed() -> None:
    assert sanitise('<div class="modal" id="login">x</div>') == "<div>x</div>"


# ---------------------------------------------------------------- plain text


def test_plain_text_markup_stays_text() -> None:
    rendered = plain_to_html("Hi <script>alert(1)</script> & <b>bye</b>")
    assert rendered == (
        "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bye&lt;/b&gt;</p>"
    )


def test_plain_text_lines_and_paragraphs() -> None:
    rendered = plain_to_html("one\r\ntwo\n\n\nthree\n")
    assert rendered == "<p>one<br>\ntwo</p>\n<p>three</p>"


def test_plain_text_links_http_and_https_only() -> None:
    rendered = plain_to_html(
        "see https://e.example/a?b=1&c=2. or (http://e.example/x) "
        "not ftp://e.example/f nor javascript:alert(1) nor www.e.example"
    )
    assert (
        '<a href="https://e.example/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">'
        "https://e.example/a?b=1&amp;c=2</a>." in rendered
    )
    assert '(<a href="http://e.example/x"' in rendered
    assert "x</a>)" in rendered
    assert rendered.count("<a ") == 2


def test_plain_text_url_cannot_break_out_of_the_attribute() -> None:
    rendered = plain_to_html('https://e.example/"onmouseover="alert(1)')
    assert 'href="https://e.example/"' in rendered
    assert "onmouseover=&quot;" in rendered
    assert sanitise(rendered) == sanitise(sanitise(rendered))
    assert not _ACTIVE.search(sanitise(rendered))


def test_plain_text_overlong_url_stays_text() -> None:
    url = "https://e.example/" + "a" * MAX_LINK_CHARS
    assert "<a " not in plain_to_html(url)


def test_plain_text_html_survives_sanitising() -> None:
    rendered = plain_to_html("go to https://e.example/\nthanks")
    assert sanitise(rendered) == rendered


# ---------------------------------------------------------------- inline images

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()


def test_cid_reference_becomes_data_uri() -> None:
    html = '<p><img src="cid:logo@e.example" alt="l"></p>'
    embedded = embed_images(html, {"<logo@e.example>": ("image/png", PNG)})
    assert embedded == f'<p><img src="{PNG_URI}" alt="l"></p>'
    assert sanitise(embedded) == embedded


def test_cid_match_ignores_quoting_brackets_percent_encoding_and_case() -> None:
    html = "<img src='cid:Logo%40E.example'><img src=cid:logo@e.example><img src=\"cid:other\">"
    embedded = embed_images(html, {"logo@e.example": ("IMAGE/PNG", PNG)})
    assert embedded.count(PNG_URI) == 2
    assert '<img src="cid:other">' in embedded


def test_cid_of_a_non_image_or_svg_is_left() -> None:
    html = '<img src="cid:a"><img src="cid:b">'
    images = {"a": ("text/html", b"<script>"), "b": ("image/svg+xml", b"<svg/>")}
    assert embed_images(html, images) == html


def test_image_over_the_per_image_limit_keeps_cid() -> None:
    html = '<img src="cid:big"><img src="cid:small">'
    images = {
        "big": ("image/jpeg", b"\xff" * (MAX_EMBEDDED_IMAGE_BYTES + 1)),
        "small": ("image/png", PNG),
    }
    embedded = embed_images(html, images)
    assert '<img src="cid:big">' in embedded
    assert PNG_URI in embedded


def test_images_past_the_total_limit_keep_cid() -> None:
    count = MAX_EMBEDDED_TOTAL_BYTES // MAX_EMBEDDED_IMAGE_BYTES + 2
    images = {f"i{n}": ("image/png", b"\x01" * MAX_EMBEDDED_IMAGE_BYTES) for n in range(count)}
    html = "".join(f'<img src="cid:i{n}">' for n in range(count))
    embedded = embed_images(html, images)
    fitting = MAX_EMBEDDED_TOTAL_BYTES // MAX_EMBEDDED_IMAGE_BYTES
    assert embedded.count("data:image/png;base64,") == fitting
    assert embedded.count('src="cid:') == count - fitting


def test_cid_in_text_or_other_attributes_is_left() -> None:
    html = '<p title="cid:logo">cid:logo</p><a href="cid:logo">x</a>'
    assert embed_images(html, {"logo": ("image/png", PNG)}) == html


def test_referenced_content_ids() -> None:
    html = '<img src="cid:A@x"><img src=\'cid:%3Cb%40x%3E\'><a href="cid:c">x</a>'
    assert referenced_content_ids(html) == {"a@x", "b@x"}


def test_embeddable_parts_from_index_attachments() -> None:
    attachments = [
        {"part": "2", "contentType": "image/png", "encodedSize": 1000, "embedded": True,
         "contentId": "<Logo@x>"},
        {"part": "3", "contentType": "image/png", "encodedSize": 1000, "embedded": False},
        {"part": "4", "contentType": "application/pdf", "encodedSize": 10, "embedded": True,
         "contentId": "<doc@x>"},
        {"part": "5", "contentType": "image/jpeg", "embedded": True, "contentId": "<big@x>",
         "encodedSize": MAX_EMBEDDED_IMAGE_BYTES * 2},
        {"part": "6", "contentType": "image/gif", "encodedSize": 10, "embedded": True,
         "contentId": "<logo@x>"},
    ]  # fmt: skip
    assert embeddable_parts(attachments) == {"logo@x": "2"}


# ---------------------------------------------------------------- quoted thread


def test_gmail_quote_is_folded_into_one_collapsed_details() -> None:
    cleaned = sanitise(
        '<div dir="ltr">Thanks!</div><div class="gmail_quote other">'
        '<div class="gmail_attr">On Monday A wrote:</div>'
        '<blockquote class="gmail_quote">old <div>reply</div></blockquote></div><p>sig</p>'
    )
    assert cleaned == (
        '<div dir="ltr">Thanks!</div>'
        '<details class="ee-collapsed-thread"><summary></summary>'
        "<div><div>On Monday A wrote:</div><blockquote>old <div>reply</div></blockquote></div>"
        "</details><p>sig</p>"
    )


def test_cited_blockquote_is_folded_once_with_its_nested_quotes() -> None:
    cleaned = sanitise(
        '<p>Hi</p><blockquote type="cite"><p title="&lt;/blockquote&gt;">q</p>'
        '<blockquote type="cite">older</blockquote></blockquote><p>tail</p>'
    )
    assert cleaned.count("<details") == 1
    assert cleaned.startswith('<p>Hi</p><details class="ee-collapsed-thread"><summary></summary>')
    assert cleaned.endswith("older</blockquote></blockquote></details><p>tail</p>")


def test_other_classes_and_plain_quotes_are_not_folded() -> None:
    cleaned = sanitise('<div class="quote">a</div><blockquote>b</blockquote>')
    assert cleaned == "<div>a</div><blockquote>b</blockquote>"
    assert "mw-quoted" not in sanitise(
        '<div class="gmail_quote">a</div><div class="yahoo_quoted">b'
    )


def test_thunderbird_reply_folds_the_cited_quote_not_the_attribution() -> None:
    cleaned = sanitise(
        '<p>Sure.</p><div class="moz-cite-prefix">On Monday A wrote:<br></div>'
        '<blockquote type="cite"><p>Lunch?</p></blockquote>'
    )
    assert cleaned == (
        "<p>Sure.</p><div>On Monday A wrote:<br></div>"
        '<details class="ee-collapsed-thread"><summary></summary>'
        '<blockquote type="cite"><p>Lunch?</p></blockquote></details>'
    )
