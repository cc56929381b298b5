"""Paid courses: prices and money, orders and hosted checkouts at Stripe, Paymob,
MyFatoorah or the built-in sandbox, verified provider webhooks, reconciliation, refunds,
coupons, receipts and sales reports."""
