"""Adapter: the SMS channel (Twilio webhook, French command parser, senders)."""
