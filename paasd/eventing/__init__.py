"""Knative Eventing on one box: Brokers, Triggers and PingSources.

`objects.py` parses and exports the kinds (pure); `delivery.py` is Knative's
retry, back-off and dead-letter rules (pure); `queue.py` keeps accepted events
and pending deliveries in SQLite (at least once, across a kill -9);
`broker.py` is the broker ingress (reached through the data plane on
`broker-ingress.knative-eventing.DOMAIN`) and the dispatcher; `ping.py` fires
PingSources on their schedules.
"""
