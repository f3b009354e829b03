"""The SASL initial responses: byte for byte what RFC 7628 and Google's XOAUTH2 say."""

from postdesk.oauth import sasl


def test_xoauth2():
    assert sasl.xoauth2("someone@example.com", "ya29.tok") == "user=someone@example.com\x01auth=Bearer ya29.tok\x01\x01"


def test_oauthbearer_escapes_the_authorization_identity():
    assert sasl.oauthbearer("a,b=c@example.com", "tok", "imap.example.com", 993) == (
        "n,a=a=2Cb=3Dc@example.com,\x01host=imap.example.com\x01port=993\x01auth=Bearer tok\x01\x01")
