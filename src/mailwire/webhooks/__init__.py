"""Webhook routing (filters and transforms in a sandbox), signing and delivery.

Nothing lives here yet. Deliveries run as durable jobs from `jobs`.
"""
