"""A tax invoice or credit note (domain/invoices.TaxDocument) drawn as an A4 PDF with fpdf2.

Text is drawn in DejaVu Sans when the machine has it (any script a name may be written in);
otherwise in the PDF core font Helvetica, which knows Latin-1 only: other characters print as
"?" there, never fail the document.
"""

from __future__ import annotations

import pathlib
from decimal import Decimal
from typing import Final

from fpdf import FPDF

from order_svc.domain.invoices import IST, TaxDocument, amount_in_words

UNICODE_FONT: Final = pathlib.Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
UNICODE_BOLD: Final = pathlib.Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
TITLES: Final = {"invoice": "TAX INVOICE", "credit_note": "CREDIT NOTE"}


class _Page(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(15, 15, 15)
        self.unicode = UNICODE_FONT.exists() and UNICODE_BOLD.exists()
        if self.unicode:
            self.add_font("body", "", str(UNICODE_FONT))
            self.add_font("body", "B", str(UNICODE_BOLD))
        self.family = "body" if self.unicode else "helvetica"

    def text_of(self, value: str) -> str:
        return value if self.unicode else value.encode("latin-1", "replace").decode("latin-1")

    def line_of(self, value: str, *, bold: bool = False, size: int = 10, align: str = "L") -> None:
        self.set_font(self.family, "B" if bold else "", size)
        self.multi_cell(0, size * 0.5, self.text_of(value), align=align, new_x="LMARGIN", new_y="NEXT")

    def row(self, cells: list[tuple[str, float, str]], *, bold: bool = False) -> None:
        self.set_font(self.family, "B" if bold else "", 9)
        for value, width, align in cells:
            self.cell(width, 6, self.text_of(value), border=1, align=align)
        self.ln()


def render(document: TaxDocument) -> bytes:
    pdf = _Page()
    pdf.set_title(f"{TITLES[document.kind]} {document.number}")
    pdf.add_page()
    pdf.line_of(TITLES[document.kind], bold=True, size=16, align="C")
    pdf.ln(2)
    seller = document.seller
    pdf.line_of(seller.name, bold=True, size=11)
    pdf.line_of(seller.address)
    pdf.line_of(f"GSTIN: {seller.gstin}    State: {seller.state}")
    pdf.ln(3)
    pdf.line_of(f"{'Invoice' if document.kind == 'invoice' else 'Credit note'} number: {document.number}", bold=True)
    pdf.line_of(f"Date: {document.issued_at.astimezone(IST):%d %b %Y}")
    pdf.line_of(f"Order: {document.order_number}")
    if document.refers_to:
        pdf.line_of(f"Against invoice: {document.refers_to}")
    if document.reason:
        pdf.line_of(f"Reason: {document.reason}")
    pdf.line_of(f"Place of supply: {document.place_of_supply}")
    pdf.ln(3)
    pdf.line_of("Billed to", bold=True)
    buyer = document.buyer
    pdf.line_of(buyer.name)
    if buyer.state:
        pdf.line_of(f"State: {buyer.state}")
    if buyer.gstin:
        pdf.line_of(f"GSTIN: {buyer.gstin}")
    pdf.ln(4)
    money = document.currency
    pdf.row([("Description", 110, "L"), ("SAC", 25, "C"), (f"Amount ({money})", 45, "R")], bold=True)
    for line in document.lines:
        pdf.row([(line.description, 110, "L"), (line.sac, 25, "C"), (_amount(line.amount), 45, "R")])
    if document.discount:
        pdf.row([("Discount", 135, "L"), (f"-{_amount(document.discount)}", 45, "R")])
    pdf.row([("Taxable value", 135, "L"), (_amount(document.taxable_value), 45, "R")], bold=True)
    for tax in document.taxes:
        pdf.row([(f"{tax.name} @ {tax.rate.normalize():f}%", 135, "L"), (_amount(tax.amount), 45, "R")])
    pdf.row([("Total", 135, "L"), (_amount(document.total), 45, "R")], bold=True)
    pdf.ln(3)
    pdf.line_of(f"Amount in words: {amount_in_words(document.total, document.currency)}")
    pdf.ln(6)
    pdf.line_of("This is a computer-generated document and needs no signature.", size=8)
    return bytes(pdf.output())


def _amount(value: Decimal) -> str:
    return f"{value:,.2f}"
