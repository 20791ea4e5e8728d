"""The transactional outbox: notifications written with the money movement, delivered after commit.

* `services` writes `ledger.models.OutboxMessage` rows in the caller's
  transaction and asks for delivery once it commits;
* `delivery` sends one message under its row lock and records the outcome in
  the same transaction (the task `ledger.deliver_outbox_message`), and sweeps
  due messages that no task delivered (the beat task `ledger.dispatch_outbox`);
* `emails` and `webhooks` render and send each channel; `webhooks` also owns
  the signing scheme partners verify.
"""
