"""Publishing the door's events beyond the appliance (MQTT for Home Assistant and others)."""
