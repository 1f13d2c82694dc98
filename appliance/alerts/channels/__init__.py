"""Owns the alert channel adapters (SMTP email, Twilio SMS, GSM modem, local mailbox)."""
