"""The daemon as a service: lifecycle, health, metrics, sd_notify, the writer lease, listeners."""
