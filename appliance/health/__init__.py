"""Owns appliance health: systemd watchdog, doctor, heartbeat, device-loss watch, SD care."""
