"""The events app: students browse and register, staff run the events."""
