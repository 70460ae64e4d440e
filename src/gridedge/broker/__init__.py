"""MQTT plumbing shared by every role: the embedded Mosquitto and one asyncio client wrapper."""
