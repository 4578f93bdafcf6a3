"""The phone line: a keypad menu for riders without a smartphone (Twilio Voice)."""
