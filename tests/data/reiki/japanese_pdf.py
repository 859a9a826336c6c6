"""Write small Japanese PDFs for the loader tests, with no PDF library.

The text uses the standard Japanese CID font HeiseiMin-W3 with the predefined
UniJIS-UCS2-H encoding, not embedded (as older Japanese office tools wrote it):
viewers substitute a Mincho font, and extraction (pypdf) decodes the codes as
UTF-16. Each page gets an optional running header and a 「- n -」 footer, the
page furniture a 例規 PDF carries.
"""

from __future__ import annotations

__all__ = ["japanese_pdf", "wrap"]


def wrap(lines: list[str], width: int) -> list[str]:
    """Break each line every ``width`` characters, mid-sentence, as a PDF line does
    (Japanese wraps anywhere, but a Latin word such as 「AI」 moves whole to the next line)."""

    def latin(ch: str) -> bool:
        return ch.isascii() and ch.isalnum()

    out: list[str] = []
    for line in lines:
        while len(line) > width:
            cut = width
            while cut > 1 and latin(line[cut - 1]) and latin(line[cut]):
                cut -= 1
            out.append(line[:cut])
            line = line[cut:]
        out.append(line)
    return out


def japanese_pdf(pages: list[list[str]], *, header: str = "", footer: bool = True) -> bytes:
    """A4 pages, one text line per entry, 18 pt apart."""
    objs: list[bytes] = [b"", b""]  # catalog and page tree, filled in last

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    font = add(b"<< /Type /Font /Subtype /Type0 /BaseFont /HeiseiMin-W3 /Encoding /UniJIS-UCS2-H /DescendantFonts [4 0 R] >>")
    add(
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /HeiseiMin-W3 /CIDSystemInfo << /Registry (Adobe) "
        b"/Ordering (Japan1) /Supplement 2 >> /FontDescriptor 5 0 R /DW 1000 >>"
    )
    add(
        b"<< /Type /FontDescriptor /FontName /HeiseiMin-W3 /Flags 6 /FontBBox [-123 -257 1001 910] "
        b"/ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 709 /StemV 69 >>"
    )
    kids: list[int] = []
    for number, lines in enumerate(pages, start=1):
        ops: list[bytes] = []

        def show(x: int, y: int, text: str, size: float = 10.5) -> None:
            hex_text = text.encode("utf-16-be").hex().encode()
            ops.append(b"BT /F1 %.1f Tf 1 0 0 1 %d %d Tm <%s> Tj ET" % (size, x, y, hex_text))

        if header:
            show(60, 800, header, 9)
        for i, line in enumerate(lines):
            show(60, 770 - 18 * i, line)
        if footer:
            show(280, 40, f"- {number} -", 9)
        stream = b"\n".join(ops)
        content = add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        kids.append(
            add(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R /Resources << /Font << /F1 %d 0 R >> >> >>" % (content, font))
        )
    objs[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objs[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out
