"""Test doubles and helpers shared by the tests and the benchmarks (never installed on a door).

- loopback.py   SMTP (aiosmtpd) and Twilio-shaped HTTP servers on loopback
- sim_modem.py  a GSM modem simulator on a pty speaking AT commands
- netproxy.py   a TCP relay that can be cut and restored (a network outage)
- alert_worker.py  a stand-alone dispatcher process (kill -9 tests)
- waiting.py    eventually(), free_port() and FakeClock
"""
