"""Room: sms."""
