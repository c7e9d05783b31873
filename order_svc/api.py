"""OrderService servicer: message → command → use case → view → message; nothing else."""

from __future__ import annotations

import grpc
from google.api import httpbody_pb2

from checkout.v1 import common_pb2, order_pb2, order_pb2_grpc
from order_svc.commands import OrderRequest
from order_svc.service import OrderService
from order_svc.tax_documents import Pdf, TaxDocuments
from order_svc.views import OrderView, PaymentView

SERVICE_NAME = order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name


class OrderApi(order_pb2_grpc.OrderServiceServicer):
    def __init__(self, service: OrderService, documents: TaxDocuments) -> None:
        self._service = service
        self._documents = documents

    async def CreateOrder(self, request: order_pb2.CreateOrderRequest, context: grpc.aio.ServicerContext) -> order_pb2.Order:
        metadata = dict(context.invocation_metadata() or ())
        command = OrderRequest(
            cart_token=request.cart_token, billing_country=request.billing.country, billing_state=request.billing.state,
            payment_method=request.payment_method, gateway=request.gateway, return_url=request.return_url,
            cancel_url=request.cancel_url, billing_name=request.billing.name, billing_gstin=request.billing.gstin,
        )
        return order_message(await self._service.create_order(command, str(metadata.get("idempotency-key", ""))))

    async def GetOrder(self, request: order_pb2.GetOrderRequest, context: grpc.aio.ServicerContext) -> order_pb2.Order:
        return order_message(await self._service.get_order(request.order_token))

    async def CreatePaymentAttempt(self, request: order_pb2.CreatePaymentAttemptRequest,
                                   context: grpc.aio.ServicerContext) -> order_pb2.PaymentSession:
        return session_message(await self._service.new_attempt(request.order_token, request.gateway))

    async def GetInvoice(self, request: order_pb2.GetInvoiceRequest,
                         context: grpc.aio.ServicerContext) -> httpbody_pb2.HttpBody:
        return await pdf_body(await self._documents.invoice_pdf(request.order_token), context)

    async def GetCreditNote(self, request: order_pb2.GetCreditNoteRequest,
                            context: grpc.aio.ServicerContext) -> httpbody_pb2.HttpBody:
        return await pdf_body(await self._documents.credit_note_pdf(request.order_token, request.refund_id), context)


async def pdf_body(pdf: Pdf, context: grpc.aio.ServicerContext) -> httpbody_pb2.HttpBody:
    """The edge answers an HttpBody with its content type as the HTTP body; the file name travels
    as a response header."""
    await context.send_initial_metadata((("content-disposition", f'inline; filename="{pdf.filename}"'),))
    return httpbody_pb2.HttpBody(content_type="application/pdf", data=pdf.data)


def session_message(view: PaymentView) -> order_pb2.PaymentSession:
    return order_pb2.PaymentSession(
        payment_token=view.payment_token, gateway=view.gateway, gateway_order_id=view.gateway_order_id,
        checkout_url=view.checkout_url, status=view.status, amount=view.amount, currency=view.currency,
        expires_at=view.expires_at, order_token=view.order_token, key_id=view.key_id,
        payment_method=view.payment_method)


def order_message(view: OrderView) -> order_pb2.Order:
    message = order_pb2.Order(
        order_token=view.order_token, cart_token=view.cart_token, user_id=view.user_id, status=view.status,
        currency=view.currency, subtotal=view.subtotal, discount_amount=view.discount_amount,
        tax_amount=view.tax_amount, total=view.total,
        taxes=[common_pb2.TaxLine(name=tax.name, rate=tax.rate, amount=tax.amount) for tax in view.taxes],
        created_at=view.created_at, enrollment_id=view.enrollment_id, discount_code=view.discount_code,
        exchange_rate=view.exchange_rate, updated_at=view.updated_at, order_number=view.order_number,
        refunded_amount=view.refunded_amount,
    )
    if view.payment is not None:
        message.payment.CopyFrom(session_message(view.payment))
    return message
