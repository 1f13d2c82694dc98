"""Remote control of the door: one-time codes, the command rules, the SMS command reader."""
