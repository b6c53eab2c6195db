"""Power and energy measurement. Every energy figure carries its source."""
