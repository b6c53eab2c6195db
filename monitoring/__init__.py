"""Node-side collectors: power meters and perf counters, pushed to InfluxDB."""
