"""Alerts: the durable outbox, its dispatcher and the channels (mailbox, SMTP, Twilio, GSM)."""
